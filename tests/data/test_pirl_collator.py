"""``pirl_collator`` hands the trunk both inputs in one memory format (issue 13, defect 11)."""
import numpy as np
import pytest
import torch
from PIL import Image
from vissl.data.collators import get_collator
from vissl.data.ssl_transforms import get_transform

CHAINS = {
    "patches": {"name": "ImgPilToPirlJigsaw", "image_crop_size": 64, "jigsaw_crop_size": 63,
                "patch_size": 18},
    "rotated": {"name": "ImgPilToPirlPair", "image_crop_size": 64,
                "pretext": {"name": "rotation", "crop_size": 64}},
}


@pytest.mark.parametrize("transformed_key", sorted(CHAINS))
def test_images_and_transformed_views_are_both_channels_last(transformed_key):
    transform = get_transform([CHAINS[transformed_key]])
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (80, 90, 3), np.uint8))
    samples = [transform({"data": [image], "label": [i], "data_valid": [1], "data_idx": [i]})
               for i in range(3)]
    batch = get_collator("pirl_collator", {"transformed_key": transformed_key})(samples)
    for key in ("images", transformed_key):
        assert batch[key][0].is_contiguous(memory_format=torch.channels_last), key

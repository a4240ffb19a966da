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


def pixel_samples(sizes):
    rng = np.random.default_rng(0)
    return [{"data": [torch.from_numpy(rng.integers(0, 256, (3, h, w), dtype=np.uint8))],
             "label": [i], "data_valid": [1], "data_idx": [i]} for i, (h, w) in enumerate(sizes)]


def test_canvas_side_gives_every_batch_one_shape_and_the_same_views():
    """``canvas_side`` (the launcher's, with on_device): one canvas shape whatever the images'
    sizes; the padding is never read, so the device path's views are the same."""
    from vissl_pirl_plugin.data.transforms.batched.pirl_augmentation import DevicePirlAugmentation
    from vissl_pirl_plugin.data.transforms.pirl_jigsaw_transform import ImgPilToPirlJigsaw

    collate = get_collator("pirl_collator", {"canvas_side": 100})
    samples = pixel_samples([(60, 90), (100, 40)])
    padded, tight = collate(samples), get_collator("pirl_collator", {})(samples)
    assert padded["pixels"][0].shape == (2, 100, 100, 3)
    assert tight["pixels"][0].shape == (2, 100, 90, 3)
    assert torch.equal(padded["pixel_sizes"][0], tight["pixel_sizes"][0])
    assert collate(pixel_samples([(30, 20)]))["pixels"][0].shape == (1, 100, 100, 3)
    augmentation = DevicePirlAugmentation(ImgPilToPirlJigsaw(
        on_device=True, image_crop_size=32, jigsaw_crop_size=48, patch_size=12))
    views = [augmentation(batch["pixels"][0], batch["pixel_sizes"][0],
                          torch.Generator().manual_seed(0)) for batch in (padded, tight)]
    for key in ("images", "patches"):
        assert torch.equal(views[0][key], views[1][key]), key


def test_an_image_larger_than_the_canvas_names_the_fix():
    with pytest.raises(ValueError, match=r"an image of 120 x 90 pixels does not fit the canvas "
                                         r"of canvas_side=100\. Set DATA.TRAIN"):
        get_collator("pirl_collator", {"canvas_side": 100})(pixel_samples([(120, 90)]))

"""The random resized crop: torchvision's draws, resampled as PIL's BILINEAR to +-1 grey level."""
import math

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms import RandomResizedCrop as TorchvisionCrop

from vissl_pirl_plugin.data.transforms.per_image.resized_crop import (
    RandomResizedCrop,
    random_region,
    resize_region,
)

SCALE, RATIO = (0.08, 1.0), (3 / 4, 4 / 3)


def region_statistics(regions, height, width):
    regions = np.array(regions, dtype=np.float64)
    tops, lefts, heights, widths = regions.T
    assert (tops >= 0).all() and (lefts >= 0).all()
    assert (tops + heights <= height).all() and (lefts + widths <= width).all()
    return ((heights * widths).mean() / (height * width), np.log(widths / heights).mean(),
            (tops / (height - heights + 1)).mean())


def test_regions_follow_torchvisions_distribution():
    torch.manual_seed(0)
    height, width, draws = 300, 200, 4000
    ours = region_statistics([random_region(height, width, SCALE, RATIO) for _ in range(draws)],
                             height, width)
    image = torch.zeros(3, height, width)
    theirs = region_statistics([TorchvisionCrop.get_params(image, list(SCALE), list(RATIO))
                                for _ in range(draws)], height, width)
    assert ours == pytest.approx(theirs, abs=0.02)


def test_the_fallback_is_torchvisions_central_crop():
    image = torch.zeros(3, 10, 1000)  # no region of the area and aspect ratio fits
    expected = TorchvisionCrop.get_params(image, list(SCALE), list(RATIO))
    assert random_region(10, 1000, SCALE, RATIO) == expected == (0, 493, 10, 13)


@pytest.mark.parametrize("region", [(5, 7, 40, 30), (0, 0, 300, 200), (20, 10, 250, 180)])
def test_enlarged_and_shrunk_regions_match_pils_bilinear_resize(region):
    rng = np.random.default_rng(0)
    smooth = np.kron(rng.integers(0, 256, (30, 20, 3)), np.ones((10, 10, 1))).astype(np.uint8)
    top, left, height, width = region
    expected = np.asarray(Image.fromarray(smooth[top:top + height, left:left + width])
                          .resize((96, 96), Image.BILINEAR)).astype(int)
    pixels = torch.from_numpy(smooth).permute(2, 0, 1)
    resized = resize_region(pixels, top, left, height, width, 96)
    assert resized.shape == (3, 96, 96)
    assert resized.permute(1, 2, 0).is_contiguous()  # channels-last
    assert np.abs(resized.permute(1, 2, 0).numpy().astype(int) - expected).max() <= 1


def test_crop_size_and_bad_scale():
    pixels = torch.zeros(3, 50, 70, dtype=torch.uint8)
    assert RandomResizedCrop(32)(pixels).shape == (3, 32, 32)
    with pytest.raises(ValueError, match=r"crop scale \[0.0, 1.0\] must be"):
        RandomResizedCrop(32, scale=(0.0, 1.0))
    with pytest.raises(ValueError, match=r"crop ratio \[1.5, 0.5\] must be"):
        RandomResizedCrop(32, ratio=(1.5, 0.5))
    assert math.isclose(RandomResizedCrop(32, scale=(0.6, 1.0)).scale[0], 0.6)

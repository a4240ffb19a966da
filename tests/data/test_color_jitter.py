"""The fast photometric augmentation agrees with torchvision's ColorJitter operations."""
import numpy as np
import pytest
import torch
import torchvision.transforms.v2.functional as F

from vissl_pirl_plugin.data.transforms.color_jitter import (
    PhotometricAugmentation,
    adjust_brightness,
    adjust_contrast,
    adjust_hue,
    adjust_saturation,
)

PIXELS = torch.randint(0, 256, (3, 40, 48), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))


def ours(op, factor):
    image = PIXELS.permute(1, 2, 0).numpy().astype(np.float32) / 255
    return torch.from_numpy(np.rint(op(image, factor) * 255)).permute(2, 0, 1)


@pytest.mark.parametrize("op, reference, factor", [
    (adjust_brightness, F.adjust_brightness, 1.3), (adjust_brightness, F.adjust_brightness, 0.6),
    (adjust_contrast, F.adjust_contrast, 1.4), (adjust_contrast, F.adjust_contrast, 0.6),
    (adjust_saturation, F.adjust_saturation, 1.4), (adjust_saturation, F.adjust_saturation, 0.6),
    (adjust_hue, F.adjust_hue, 0.2), (adjust_hue, F.adjust_hue, -0.2), (adjust_hue, F.adjust_hue, 0.5),
])
def test_each_op_matches_torchvision_to_one_grey_level(op, reference, factor):
    expected = reference(PIXELS, factor).float()
    assert (ours(op, factor).float() - expected).abs().max() <= 1


def test_factors_stay_in_colorjitter_ranges_and_patches_differ():
    torch.manual_seed(0)
    flat = torch.full((200, 3, 8, 8), 128, dtype=torch.uint8)
    out = PhotometricAugmentation(color_jitter=(0.4, 0.0, 0.0, 0.0))(flat).float()
    factors = out[:, 0, 0, 0] / 128  # brightness only: value = 128 * factor
    assert factors.min() >= 0.6 - 0.01 and factors.max() <= 1.4 + 0.01
    assert factors.min() < 0.7 and factors.max() > 1.3  # the whole range is used
    assert out[:, 0, 0, 0].unique().numel() > 50  # every patch draws its own factor


def test_grayscale_and_identity():
    torch.manual_seed(0)
    assert torch.equal(PhotometricAugmentation(color_jitter=(0, 0, 0, 0))(PIXELS), PIXELS)
    gray = PhotometricAugmentation(color_jitter=(0, 0, 0, 0), grayscale_p=1.0)(PIXELS)
    assert torch.equal(gray[0], gray[1]) and torch.equal(gray[1], gray[2])


def test_bad_jitter_settings():
    with pytest.raises(ValueError, match="brightness, contrast, saturation, hue"):
        PhotometricAugmentation(color_jitter=(0.4, 0.4))
    with pytest.raises(ValueError, match="hue=0.7 must be in"):
        PhotometricAugmentation(color_jitter=(0.4, 0.4, 0.4, 0.7))

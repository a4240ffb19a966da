"""The batched colour jitter agrees with torchvision's ColorJitter operations, on tensors and on
the PIL images VISSL's ColorJitter works on."""
import numpy as np
import pytest
import torch
import torchvision.transforms.v2.functional as F
from PIL import Image

from vissl_pirl_plugin.data.transforms.color_jitter import (
    ColorJitter,
    adjust_brightness,
    adjust_contrast,
    adjust_hue,
    adjust_saturation,
)

PIXELS = torch.randint(0, 256, (3, 40, 48), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
OPS = [(adjust_brightness, F.adjust_brightness, 1.3), (adjust_brightness, F.adjust_brightness, 0.6),
       (adjust_contrast, F.adjust_contrast, 1.4), (adjust_contrast, F.adjust_contrast, 0.6),
       (adjust_saturation, F.adjust_saturation, 1.4), (adjust_saturation, F.adjust_saturation, 0.6),
       (adjust_hue, F.adjust_hue, 0.2), (adjust_hue, F.adjust_hue, -0.2), (adjust_hue, F.adjust_hue, 0.5)]


def ours(op, factor):
    images = PIXELS.permute(1, 2, 0).numpy()[None].astype(np.float32) / 255
    return torch.from_numpy(np.rint(op(images, np.array([factor])) * 255))[0].permute(2, 0, 1)


@pytest.mark.parametrize("op, reference, factor", OPS[:-3])
def test_each_op_matches_torchvision_on_tensors_to_one_grey_level(op, reference, factor):
    expected = reference(PIXELS, factor).float()
    assert (ours(op, factor).float() - expected).abs().max() <= 1


@pytest.mark.parametrize("op, reference, factor", OPS)
def test_each_op_matches_the_pil_op_vissl_runs(op, reference, factor):
    """VISSL's ColorJitter runs on PIL images (ImageEnhance, PIL's 8-bit HSV for the hue)."""
    image = Image.fromarray(PIXELS.permute(1, 2, 0).numpy())
    expected = torch.from_numpy(np.array(reference(image, factor))).permute(2, 0, 1).float()
    assert (ours(op, factor).float() - expected).abs().max() <= 1


def test_each_crop_of_a_batch_gets_its_own_factors_in_the_colorjitter_ranges():
    flat = np.full((200, 8, 8, 3), 128, dtype=np.uint8)
    uniforms = torch.rand(200, 4, generator=torch.Generator().manual_seed(0)).numpy()
    orders = np.tile(np.arange(4), (200, 1))
    out = ColorJitter((0.4, 0.0, 0.0, 0.0))(flat, uniforms, orders).astype(np.float32)
    factors = out[:, 0, 0, 0] / 128  # brightness only: value = 128 * factor
    assert np.allclose(factors, 0.6 + 0.8 * uniforms[:, 0], atol=0.01)
    assert np.unique(out[:, 0, 0, 0]).size > 50


def test_the_order_of_the_ops_is_each_crop_own():
    """Brightness then contrast differs from contrast then brightness once values clip."""
    crops = np.repeat(PIXELS.permute(1, 2, 0).numpy()[None], 2, axis=0)
    uniforms = np.array([[1.0, 0.0, 0.5, 0.5]] * 2)  # brightness 1.4, contrast 0.6
    orders = np.array([[0, 1, 2, 3], [1, 0, 2, 3]])
    out = ColorJitter((0.4, 0.4, 0.0, 0.0))(crops, uniforms, orders)
    for row, order in enumerate(orders):
        single = ColorJitter((0.4, 0.4, 0.0, 0.0))(crops[row:row + 1], uniforms[row:row + 1],
                                                    order[None])
        assert np.array_equal(out[row], single[0])
    assert not np.array_equal(out[0], out[1])


def test_bad_jitter_settings():
    with pytest.raises(ValueError, match="brightness, contrast, saturation, hue"):
        ColorJitter((0.4, 0.4))
    with pytest.raises(ValueError, match="hue=0.7 must be in"):
        ColorJitter((0.4, 0.4, 0.4, 0.7))

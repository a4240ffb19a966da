"""Normalisation of uint8 views: torchvision's ToDtype(scale) + Normalize, channels-last kept."""
import pytest
import torch
from torchvision.transforms import v2

from vissl_pirl_plugin.data.transforms.common.normalization import NormalizedFloat

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@pytest.mark.parametrize("shape", [(3, 24, 40), (9, 3, 16, 16)])
def test_equals_torchvision_and_stays_channels_last(shape):
    pixels = torch.randint(0, 256, shape[:-3] + shape[-2:] + (3,), dtype=torch.uint8).movedim(-1, -3)
    expected = v2.Normalize(list(MEAN), list(STD))(v2.ToDtype(torch.float32, scale=True)(pixels))
    normalized = NormalizedFloat(MEAN, STD)(pixels)
    torch.testing.assert_close(normalized, expected, atol=1e-5, rtol=0)
    assert normalized.movedim(-3, -1).is_contiguous()


def test_bad_statistics_are_refused():
    with pytest.raises(ValueError, match="3 values per channel, std > 0"):
        NormalizedFloat((0.5, 0.5), STD)
    with pytest.raises(ValueError, match="3 values per channel, std > 0"):
        NormalizedFloat(MEAN, (0.2, 0.0, 0.2))


def test_a_float_input_is_left_alone():
    pixels = torch.rand(8, 8, 3).movedim(-1, -3) * 255
    before = pixels.clone()
    NormalizedFloat(MEAN, STD)(pixels)
    assert torch.equal(pixels, before)

"""PIL's 8-bit HSV conversions, vectorised: equal to PIL on every one of the 2**24 inputs."""
import cv2
import numpy as np
import pytest
from PIL import Image

from vissl_pirl_plugin.data.transforms.per_image.hsv import hsv_to_rgb, rgb_to_hsv


@pytest.fixture(scope="module")
def every_triple() -> np.ndarray:
    """All 2**24 byte triples as one 4096 x 4096 image."""
    codes = np.arange(1 << 24, dtype=np.uint32)
    return np.stack([codes >> 16, codes >> 8, codes], axis=-1).astype(np.uint8).reshape(
        4096, 4096, 3)


@pytest.mark.parametrize("source, target, ours", [("RGB", "HSV", rgb_to_hsv),
                                                  ("HSV", "RGB", hsv_to_rgb)])
def test_every_input_converts_exactly_as_pil(every_triple, source, target, ours):
    expected = np.asarray(Image.frombytes(source, (4096, 4096), every_triple.tobytes())
                          .convert(target))
    converted = np.stack(ours(*cv2.split(every_triple)), axis=-1)
    assert np.array_equal(converted, expected)

"""Turning any PIL image VISSL may hand us into an 8-bit RGB tensor; the evaluation view."""
from typing import Sequence

import numpy as np
import torch
from PIL import Image
from torchvision.transforms import v2


def to_rgb_uint8(image: Image.Image) -> torch.Tensor:
    """A ``(3, H, W)`` uint8 tensor from a PIL image of any mode, in channels-last memory
    (a view of the HWC pixel array: no copy, and torchvision resizes it several times faster).

    Grayscale, palette, RGBA (alpha dropped), CMYK and YCbCr images go through
    PIL's own conversion. 16-bit and 32-bit integer or float images (``I;16``,
    ``I``, ``F``) are rescaled to 8 bits first: PIL's direct ``convert("RGB")``
    clips them to white.
    """
    if image.mode.startswith("I") or image.mode == "F":
        array = np.asarray(image, dtype=np.float64)
        if image.mode.startswith("I;16"):
            array = array / 257.0
        else:
            low, high = float(array.min()), float(array.max())
            array = (array - low) * (255.0 / (high - low)) if high > low else array * 0.0
        image = Image.fromarray(np.clip(np.rint(array), 0, 255).astype(np.uint8), mode="L")
    if image.mode != "RGB":
        image = image.convert("RGB")
    return torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1)


def centre_crop(crop: int, resize: int, mean: Sequence[float], std: Sequence[float]) -> v2.Compose:
    """The deterministic evaluation view of an RGB PIL image: shorter side resized to ``resize``,
    the central ``crop x crop`` square, as a float tensor normalised with ``mean`` and ``std``."""
    return v2.Compose([v2.PILToTensor(), v2.Resize(resize, antialias=True), v2.CenterCrop(crop),
                       v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(mean), list(std))])

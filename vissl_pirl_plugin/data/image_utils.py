"""Turning any PIL image VISSL may hand us into an 8-bit RGB tensor; the evaluation view."""
from typing import Optional, Sequence

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


def capped(pixels: torch.Tensor, max_side: Optional[int]) -> torch.Tensor:
    """uint8 ``(3, H, W)`` pixels whose longer side exceeds ``max_side`` shrunk to it (PIL's
    bilinear resize, antialiased, aspect ratio kept), channels-last; others (or ``max_side``
    None) returned as they are."""
    height, width = pixels.shape[-2:]
    if max_side is None or max(height, width) <= max_side:
        return pixels
    factor = max_side / max(height, width)
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    image = Image.fromarray(pixels.permute(1, 2, 0).numpy()).resize(size, Image.BILINEAR)
    return torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1)


def centre_crop(crop: int, resize: int, mean: Sequence[float], std: Sequence[float]) -> v2.Compose:
    """The deterministic evaluation view of an RGB PIL image: shorter side resized to ``resize``,
    the central ``crop x crop`` square, as a float tensor normalised with ``mean`` and ``std``."""
    return v2.Compose([v2.PILToTensor(), v2.Resize(resize, antialias=True), v2.CenterCrop(crop),
                       v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(mean), list(std))])

"""Colour jitter of PIRL (paper Appendix A), vectorised over a batch of crops.

"random color jitter, hue, contrast, saturation": the operations and ranges of
torchvision's ``ColorJitter`` that the authors' config uses (brightness, contrast and
saturation factors uniform in ``[max(0, 1 - x), 1 + x]``, a hue shift uniform in ``[-h, h]``
turns, applied in a random order drawn per crop). Every crop of a batch (I, or the 9 jigsaw
patches) gets its own factors and order.

Crops are processed as one float32 ``(N, H, W, 3)`` array with numpy and rounded once at the
end; each op agrees to +-1 grey level with torchvision's op on the PIL images VISSL's
``ColorJitter`` works on (the hue through PIL's 8-bit HSV, as there).
"""
from typing import Sequence

import numpy as np

GRAY_WEIGHTS = np.array([0.2989, 0.587, 0.114], dtype=np.float32)  # ITU-R 601-2, as torchvision


def _per_crop(values: np.ndarray) -> np.ndarray:
    return np.asarray(values, dtype=np.float32).reshape(-1, 1, 1, 1)


def luma(images: np.ndarray) -> np.ndarray:
    """``(N, H, W, 1)`` luma of float RGB ``(N, H, W, 3)``."""
    return images @ GRAY_WEIGHTS[:, None]


def adjust_brightness(images: np.ndarray, factors: np.ndarray) -> np.ndarray:
    return np.clip(images * _per_crop(factors), 0.0, 1.0)


def adjust_contrast(images: np.ndarray, factors: np.ndarray) -> np.ndarray:
    means = luma(images).mean(axis=(1, 2, 3)).reshape(-1, 1, 1, 1)
    factors = _per_crop(factors)
    return np.clip(factors * images + (1 - factors) * means, 0.0, 1.0)


def adjust_saturation(images: np.ndarray, factors: np.ndarray) -> np.ndarray:
    factors = _per_crop(factors)
    return np.clip(factors * images + (1 - factors) * luma(images), 0.0, 1.0)


def adjust_hue(images: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """Rotates the hue by ``shifts`` turns as torchvision does on the PIL images VISSL jitters: 8-bit
    HSV (PIL's ``convert("HSV")`` and back, ``Convert.c``), hue shifted by ``int(shift * 255)``
    modulo 256. Float RGB in [0, 1] in and out."""
    rgb = np.rint(images * 255.0).astype(np.int16)
    high, low = rgb.max(axis=-1), rgb.min(axis=-1)
    spread = (high - low).astype(np.float32)
    grey = spread == 0
    spread[grey] = 1.0
    red, green, blue = (((high - rgb[..., c]) / spread) for c in range(3))
    # float32 where PIL stores a float, float64 where its C expression is double
    hue = np.where(rgb[..., 0] == high, blue - green, np.where(
        rgb[..., 1] == high, 2.0 + red.astype(np.float64) - blue,
        4.0 + green.astype(np.float64) - red)).astype(np.float32)
    hue = np.mod(hue.astype(np.float64) / 6.0 + 1.0, 1.0).astype(np.float32)
    hue = np.clip((hue.astype(np.float64) * 255.0).astype(np.int16), 0, 255)
    saturation = (spread / np.maximum(high, 1).astype(np.float32)).astype(np.float64)
    saturation = np.clip((saturation * 255.0).astype(np.int16), 0, 255)
    hue[grey], saturation[grey] = 0, 0
    offsets = (np.asarray(shifts, dtype=np.float32) * 255.0).astype(np.int32).reshape(-1, 1, 1)
    hue = np.mod(hue + offsets, 256).astype(np.float32)
    sector = np.floor(hue * 6.0 / 255.0)
    fraction_s = (hue * 6.0 / 255.0 - sector) * saturation
    value = high.astype(np.float32)
    p = np.rint(value * (255.0 - saturation) / 255.0)
    q = np.rint(value * (255.0 - fraction_s) / 255.0)
    t = np.rint(value * (255.0 - saturation + fraction_s) / 255.0)
    sector = sector.astype(np.int64) % 6
    channels = [np.choose(sector, [value, q, p, p, t, value]),
                np.choose(sector, [t, value, value, q, p, p]),
                np.choose(sector, [p, p, t, value, value, q])]
    out = np.stack(channels, axis=-1)
    out[grey] = value[grey][..., None]
    return np.clip(out, 0, 255).astype(np.float32) * np.float32(1 / 255)


OPS = (adjust_brightness, adjust_contrast, adjust_saturation, adjust_hue)


class ColorJitter:
    """torchvision's ``ColorJitter(brightness, contrast, saturation, hue)`` on a batch of crops."""

    def __init__(self, strengths: Sequence[float] = (0.4, 0.4, 0.4, 0.2)) -> None:
        if len(strengths) != 4:
            raise ValueError("color_jitter must be [brightness, contrast, saturation, hue], got "
                             f"{list(strengths)}.")
        brightness, contrast, saturation, hue = (float(v) for v in strengths)
        if not 0 <= hue <= 0.5:
            raise ValueError(f"color_jitter hue={hue} must be in [0, 0.5].")
        ranges = [(max(0.0, 1 - v), 1 + v) for v in (brightness, contrast, saturation)]
        self.low, self.high = (np.array(bound, dtype=np.float32)
                               for bound in zip(*ranges, (-hue, hue)))
        self.active = [strength > 0 for strength in (brightness, contrast, saturation, hue)]

    def __call__(self, crops: np.ndarray, uniforms: np.ndarray, orders: np.ndarray) -> np.ndarray:
        """uint8 ``(N, H, W, 3)`` -> uint8; ``uniforms`` ``(N, 4)`` in [0, 1) pick the factors,
        ``orders`` ``(N, 4)`` the op order of each crop."""
        if not any(self.active):
            return crops
        factors = self.low + (self.high - self.low) * uniforms
        images = crops.astype(np.float32) * np.float32(1 / 255)
        for step in range(len(OPS)):
            for op_index, op in enumerate(OPS):
                rows = np.flatnonzero(orders[:, step] == op_index)
                if self.active[op_index] and rows.size:
                    images[rows] = op(images[rows], factors[rows, op_index])
        return np.rint(images * 255.0).astype(np.uint8)

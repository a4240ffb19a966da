"""The PIL photometric operations of the authors' PIRL recipe, vectorised over a batch of crops.

Paper Appendix A: "random values of color jitter, contrast, brightness, saturation, sharpness,
equalize etc.". The authors' released config (VISSL 0.1.6's
``configs/config/pretrain/pirl/pirl_jigsaw_4node_resnet50.yaml``) applies, to I and to each
patch: ``ImgPilRandomPhotometric`` (with p = 0.66, posterize, sharpness, solarize and
autocontrast in that order, values drawn as in ``pil_photometric_transforms_lib.py``) and
``RandomGrayscale``. Each function here takes uint8 ``(N, H, W, 3)`` crops and per-crop
parameters ``(N,)``, and equals PIL's op (``ImageOps`` / ``ImageEnhance`` / ``convert("L")``)
to +-1 grey level. Pure numpy, no VISSL.
"""
import numpy as np

# PIL's ImageFilter.SMOOTH kernel (used by ImageEnhance.Sharpness), normalised by its sum 13
SMOOTH_CENTRE, SMOOTH_SCALE = 5.0, 1.0 / 13.0


def _per_crop(values: np.ndarray, dtype=np.float32) -> np.ndarray:
    return np.asarray(values, dtype=dtype).reshape(-1, 1, 1, 1)


def posterize(crops: np.ndarray, bits: np.ndarray) -> np.ndarray:
    """``ImageOps.posterize``: keeps the top ``bits`` (4 to 8) bits of every channel."""
    masks = (0xFF << (8 - np.asarray(bits, dtype=np.int64))) & 0xFF
    return crops & _per_crop(masks, np.uint8)


def solarize(crops: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """``ImageOps.solarize``: inverts every value ``>= threshold`` (0 to 256)."""
    return np.where(crops >= _per_crop(thresholds, np.int16), 255 - crops, crops)


def sharpness(crops: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """``ImageEnhance.Sharpness``: blends the ``SMOOTH``-filtered crop (border pixels kept, as PIL's
    3 x 3 filter leaves them) with the crop, ``factor`` 0 = smooth, 1 = unchanged, 2 = sharper."""
    image = crops.astype(np.float32)
    padded = np.pad(image, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge")
    height, width = image.shape[1:3]
    box = sum(padded[:, dy:dy + height, dx:dx + width] for dy in range(3) for dx in range(3))
    smooth = np.rint((box + (SMOOTH_CENTRE - 1.0) * image) * SMOOTH_SCALE)
    smooth[:, [0, -1]] = image[:, [0, -1]]
    smooth[:, :, [0, -1]] = image[:, :, [0, -1]]
    blended = smooth + _per_crop(factors) * (image - smooth)
    return np.clip(blended, 0, 255).astype(np.uint8)


def autocontrast(crops: np.ndarray) -> np.ndarray:
    """``ImageOps.autocontrast`` (no cutoff): stretches each channel of each crop to 0-255."""
    low = crops.min(axis=(1, 2), keepdims=True).astype(np.float64)  # PIL's Python floats
    high = crops.max(axis=(1, 2), keepdims=True).astype(np.float64)
    flat = high <= low
    scale = np.where(flat, 1.0, 255.0 / np.where(flat, 1.0, high - low))
    offset = np.where(flat, 0.0, -low * scale)
    return np.clip(crops * scale + offset, 0, 255).astype(np.uint8)


def grayscale(crops: np.ndarray) -> np.ndarray:
    """``convert("L")`` then back to 3 channels: ITU-R 601-2 luma, PIL's fixed-point rounding."""
    luma = (crops.astype(np.uint32) @ np.array([19595, 38470, 7471], dtype=np.uint32)
            + 0x8000) >> 16
    return np.repeat(luma.astype(np.uint8)[..., None], 3, axis=-1)

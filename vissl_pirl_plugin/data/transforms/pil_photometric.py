"""PIL's photometric operations of the authors' PIRL recipe, on uint8 batches of crops.

Paper Appendix A: "random values of color jitter, contrast, brightness, saturation, sharpness,
equalize etc.". The authors' released config (VISSL 0.1.6's
``configs/config/pretrain/pirl/pirl_jigsaw_4node_resnet50.yaml``) runs torchvision's
``ColorJitter`` on PIL images (``ImageEnhance`` and PIL's 8-bit HSV), then
``ImgPilRandomPhotometric`` (posterize, sharpness, solarize, autocontrast; value ranges in
``pil_photometric_transforms_lib.py``) and ``RandomGrayscale``. Each function here takes uint8
``(N, H, W, 3)`` crops and per-crop parameters ``(N,)`` and equals the PIL op to +-1 grey
level: per-pixel ops run once on the stacked batch, per-crop parameters become 256-entry
lookup tables (``cv2.LUT``). Pure numpy / OpenCV / PIL, no VISSL.
"""
import cv2
import numpy as np
from PIL import Image

cv2.setNumThreads(1)  # data-loader workers are the unit of parallelism
LEVELS = np.arange(256, dtype=np.float32)
SMOOTH = np.array([[1, 1, 1], [1, 5, 1], [1, 1, 1]], dtype=np.float32) / 13  # ImageFilter.SMOOTH


def _stacked(crops: np.ndarray) -> np.ndarray:
    """The batch as one ``(N * H, W, 3)`` image (a view), for per-pixel ops."""
    count, height, width, channels = crops.shape
    return crops.reshape(count * height, width, channels)


def apply_luts(crops: np.ndarray, luts: np.ndarray) -> np.ndarray:
    """Maps each crop through its table: ``luts`` ``(N, 256)`` or per channel ``(N, 256, 3)``."""
    tables = luts.astype(np.uint8).reshape(len(crops), 256, 1, -1)
    return np.stack([cv2.LUT(crop, table) for crop, table in zip(crops, tables)])


def luma(crops: np.ndarray) -> np.ndarray:
    """``(N, H, W)`` ITU-R 601-2 luma (PIL's ``convert("L")``)."""
    return cv2.cvtColor(_stacked(crops), cv2.COLOR_RGB2GRAY).reshape(crops.shape[:3])


def grayscale(crops: np.ndarray) -> np.ndarray:
    """``convert("L")`` then back to 3 channels (torchvision's ``RandomGrayscale`` on PIL)."""
    return cv2.cvtColor(_stacked(crops), cv2.COLOR_RGB2GRAY).reshape(
        crops.shape[:3])[..., None].repeat(3, axis=-1)


def _blend_luts(degenerate: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """``Image.blend(degenerate, image, factor)`` of a constant degenerate image, as tables."""
    degenerate = np.asarray(degenerate, dtype=np.float32)[:, None]
    factors = np.asarray(factors, dtype=np.float32)[:, None]
    return np.clip(degenerate + factors * (LEVELS - degenerate), 0, 255)


def brightness(crops: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """``ImageEnhance.Brightness``: blends with black."""
    return apply_luts(crops, _blend_luts(np.zeros(len(crops)), factors))


def contrast(crops: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """``ImageEnhance.Contrast``: blends with the crop's mean luma, rounded to an integer."""
    means = np.floor(luma(crops).reshape(len(crops), -1).mean(axis=1) + 0.5)
    return apply_luts(crops, _blend_luts(means, factors))


def saturation(crops: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """``ImageEnhance.Color``: blends with the crop's grayscale version."""
    gray = grayscale(crops)
    return np.stack([cv2.addWeighted(crop, float(f), degenerate, 1.0 - float(f), 0.0)
                     for crop, degenerate, f in zip(crops, gray, factors)])


def hue(crops: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """torchvision's ``adjust_hue`` on PIL: PIL's 8-bit HSV, hue + ``int(shift * 255)`` mod 256."""
    stacked = _stacked(crops)
    size = stacked.shape[1::-1]
    hsv = np.array(Image.frombytes("RGB", size, stacked.tobytes()).convert("HSV"))
    hsv = hsv.reshape(crops.shape)
    offsets = (np.asarray(shifts, dtype=np.float64) * 255).astype(np.int32).astype(np.uint8)
    hsv[..., 0] += offsets.reshape(-1, 1, 1)  # uint8: wraps modulo 256
    rgb = Image.frombytes("HSV", size, hsv.tobytes()).convert("RGB")
    return np.asarray(rgb).reshape(crops.shape)


def posterize(crops: np.ndarray, bits: np.ndarray) -> np.ndarray:
    """``ImageOps.posterize``: keeps the top ``bits`` (4 to 8) bits of every channel."""
    masks = (0xFF << (8 - np.asarray(bits, dtype=np.int64))) & 0xFF
    return crops & masks.astype(np.uint8).reshape(-1, 1, 1, 1)


def solarize(crops: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """``ImageOps.solarize``: inverts every value ``>= threshold`` (0 to 256)."""
    thresholds = np.asarray(thresholds, dtype=np.float32)[:, None]
    return apply_luts(crops, np.where(LEVELS >= thresholds, 255 - LEVELS, LEVELS))


def sharpness(crops: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """``ImageEnhance.Sharpness``: blends the ``SMOOTH``-filtered crop (border pixels kept, as PIL's
    3 x 3 filter leaves them) with the crop; 0 = smooth, 1 = unchanged, 2 = sharper. The filter
    runs once over the stacked batch: rows mixed across crops are border rows, restored after."""
    smooth = cv2.filter2D(_stacked(crops), -1, SMOOTH,
                          borderType=cv2.BORDER_REPLICATE).reshape(crops.shape)
    smooth[:, [0, -1]] = crops[:, [0, -1]]
    smooth[:, :, [0, -1]] = crops[:, :, [0, -1]]
    return np.stack([cv2.addWeighted(crop, float(f), degenerate, 1.0 - float(f), 0.0)
                     for crop, degenerate, f in zip(crops, smooth, factors)])


def autocontrast(crops: np.ndarray) -> np.ndarray:
    """``ImageOps.autocontrast`` (no cutoff): stretches each channel of each crop to 0-255."""
    # channel-major copy first: numpy reduces a contiguous axis ~40 times faster than a strided one
    planes = np.ascontiguousarray(crops.reshape(len(crops), -1, 3).transpose(0, 2, 1))
    low = planes.min(axis=2).astype(np.float64)[:, None, :]  # PIL's Python floats
    high = planes.max(axis=2).astype(np.float64)[:, None, :]
    flat = high <= low
    scale = np.where(flat, 1.0, 255.0 / np.where(flat, 1.0, high - low))
    offset = np.where(flat, 0.0, -low * scale)
    return apply_luts(crops, np.clip(LEVELS[:, None] * scale + offset, 0, 255))

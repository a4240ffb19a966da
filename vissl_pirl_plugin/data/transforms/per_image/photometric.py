"""PIL's photometric operations of the authors' PIRL recipe, on uint8 batches of crops.

Paper Appendix A: "random values of color jitter, contrast, brightness, saturation, sharpness,
equalize etc.". The authors' released config (VISSL 0.1.6's
``configs/config/pretrain/pirl/pirl_jigsaw_4node_resnet50.yaml``) runs torchvision's
``ColorJitter`` on PIL images (``ImageEnhance`` and PIL's 8-bit HSV), then
``ImgPilRandomPhotometric`` (posterize, sharpness, solarize, autocontrast; value ranges in
``pil_photometric_transforms_lib.py``) and ``RandomGrayscale``. Each function here takes uint8
``(N, H, W, 3)`` crops and per-crop parameters ``(N,)``, returns new crops and equals the PIL op
to +-1 grey level (hue exactly, ``hsv.py``). Per-pixel ops run once on the batch stacked
into one ``(N * H, W, 3)`` image; per-crop parameters become 256-entry lookup tables applied crop
by crop (``cv2.LUT``). Pure numpy / OpenCV, no VISSL.
"""
from typing import Callable

import cv2
import numpy as np

from vissl_pirl_plugin.data.transforms.per_image.hsv import hsv_to_rgb, rgb_to_hsv

cv2.setNumThreads(1)  # data-loader workers are the unit of parallelism
LEVELS = np.arange(256, dtype=np.float32)
SMOOTH = np.array([[1, 1, 1], [1, 5, 1], [1, 1, 1]], dtype=np.float32) / 13  # ImageFilter.SMOOTH
TRUNCATE = -0.499  # added before OpenCV's rounding, see blend()


def _stacked(crops: np.ndarray) -> np.ndarray:
    """The batch as one ``(N * H, W, C)`` image (a view), for per-pixel ops."""
    count, height, width, channels = crops.shape
    return crops.reshape(count * height, width, channels)


def apply_to_rows(crops: np.ndarray, chosen: np.ndarray, op: Callable[..., np.ndarray],
                  *params: np.ndarray) -> None:
    """``crops[chosen] = op(crops[chosen], *(p[chosen] for p in params))`` in place, without
    gathering the rows when every crop is chosen."""
    if chosen.all():
        crops[:] = op(crops, *params)
    elif chosen.any():
        crops[chosen] = op(crops[chosen], *(param[chosen] for param in params))


def flip(crops: np.ndarray) -> np.ndarray:
    """``transpose(FLIP_LEFT_RIGHT)`` of every crop."""
    return cv2.flip(_stacked(crops), 1).reshape(crops.shape)


def apply_luts(crops: np.ndarray, luts: np.ndarray) -> np.ndarray:
    """Maps each crop through its table: ``luts`` ``(N, 256)`` or per channel ``(N, 256, 3)``."""
    tables = np.minimum(np.maximum(luts, 0), 255).astype(np.uint8).reshape(len(crops), 256, 1, -1)
    mapped = np.empty_like(crops)
    for crop, table, out in zip(crops, tables, mapped):
        cv2.LUT(crop, table, dst=out)
    return mapped


def blend(crops: np.ndarray, degenerate: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """``Image.blend(degenerate, crop, factor)`` per crop (``ImageEnhance``'s ``enhance``). PIL
    truncates the blend, OpenCV rounds it: ``TRUNCATE`` turns OpenCV's rounding into PIL's
    truncation (0.001 short of -0.5, so that whole values stay whole), else every blended value
    would come out half a grey level brighter on average."""
    blended = np.empty_like(crops)
    for crop, other, factor, out in zip(crops, degenerate, factors, blended):
        cv2.addWeighted(crop, float(factor), other, 1.0 - float(factor), TRUNCATE, dst=out)
    return blended


def luma(crops: np.ndarray) -> np.ndarray:
    """``(N, H, W)`` ITU-R 601-2 luma (PIL's ``convert("L")``)."""
    return cv2.cvtColor(_stacked(crops), cv2.COLOR_RGB2GRAY).reshape(crops.shape[:3])


def grayscale(crops: np.ndarray) -> np.ndarray:
    """``convert("L")`` then back to 3 channels (torchvision's ``RandomGrayscale`` on PIL)."""
    gray = cv2.cvtColor(_stacked(crops), cv2.COLOR_RGB2GRAY)
    return cv2.cvtColor(gray, cv2.COLOR_GRAY2RGB).reshape(crops.shape)


def _blend_luts(degenerate: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """``Image.blend`` with a constant degenerate image, as tables."""
    degenerate = np.asarray(degenerate, dtype=np.float32)[:, None]
    factors = np.asarray(factors, dtype=np.float32)[:, None]
    return degenerate + factors * (LEVELS - degenerate)


def brightness(crops: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """``ImageEnhance.Brightness``: blends with black."""
    return apply_luts(crops, _blend_luts(np.zeros(len(crops)), factors))


def contrast(crops: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """``ImageEnhance.Contrast``: blends with the crop's mean luma, rounded to an integer."""
    sums = np.array([cv2.sumElems(plane)[0] for plane in luma(crops)])
    means = np.floor(sums / (crops.shape[1] * crops.shape[2]) + 0.5)
    return apply_luts(crops, _blend_luts(means, factors))


def saturation(crops: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """``ImageEnhance.Color``: blends with the crop's grayscale version."""
    return blend(crops, grayscale(crops), factors)


def hue(crops: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """torchvision's ``adjust_hue`` on PIL: PIL's 8-bit HSV, hue + ``int(shift * 255)`` mod 256."""
    planes = cv2.split(_stacked(crops))
    hue_plane, saturation_plane, value_plane = rgb_to_hsv(*planes)
    offsets = (np.asarray(shifts, dtype=np.float64) * 255).astype(np.int32).astype(np.uint8)
    hue_plane.reshape(len(crops), -1)[:] += offsets[:, None]  # uint8: wraps modulo 256
    return cv2.merge(hsv_to_rgb(hue_plane, saturation_plane, value_plane)).reshape(crops.shape)


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
    return blend(crops, smooth, factors)


def autocontrast(crops: np.ndarray) -> np.ndarray:
    """``ImageOps.autocontrast`` (no cutoff): stretches each channel of each crop to 0-255. Runs
    on the channel planes (one-channel tables are faster than per-channel ones)."""
    planes = [plane.reshape(len(crops), -1) for plane in cv2.split(_stacked(crops))]
    for plane in planes:
        low = plane.min(axis=1).astype(np.float64)[:, None]  # PIL's Python floats
        high = plane.max(axis=1).astype(np.float64)[:, None]
        flat = high <= low
        scale = np.where(flat, 1.0, 255.0 / np.where(flat, 1.0, high - low))
        offset = np.where(flat, 0.0, -low * scale)
        tables = np.clip(LEVELS * scale + offset, 0, 255).astype(np.uint8)
        for row, table in zip(plane, tables):
            cv2.LUT(row, table, dst=row)
    return cv2.merge([plane.reshape(-1, crops.shape[2]) for plane in planes]).reshape(crops.shape)

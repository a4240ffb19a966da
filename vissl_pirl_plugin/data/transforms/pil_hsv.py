"""PIL's 8-bit RGB <-> HSV conversions, bit-exact and vectorised, for the hue jitter of PIRL.

Paper Appendix A: the colour jitter includes "hue". The authors' config runs torchvision's
``ColorJitter`` on PIL images, whose ``adjust_hue`` converts to PIL's 8-bit ``HSV`` mode, shifts H
and converts back (``Convert.c``: ``rgb2hsv_row`` and ``hsv2rgb``, float arithmetic truncated to
8 bits). PIL converts one pixel at a time; here both directions run on whole uint8 planes with
OpenCV and small lookup tables, and equal PIL's output on every one of the 2**24 inputs
(``tests/data/test_pil_hsv.py`` checks all of them):

* RGB -> HSV. V is the largest channel. PIL's H depends only on which channel is largest, which
  is smallest, ``max - min`` and ``mid - min``; S only on ``max - min`` and ``max``. The tables
  for both are made by PIL itself, converting one representative colour per key.
* HSV -> RGB. Per pixel, the channels are ``v``, ``p = round(v (1 - s))`` and one of PIL's ``q``
  or ``t``, placed by the sector of H. ``p`` comes from a ``(s, v)`` table; the factor of ``q``
  or ``t`` from an ``(s, h)`` table of float64 values computed as PIL does (float32 products
  where PIL multiplies two floats), then multiplied by ``v`` and rounded as C's ``round``.
  As ``v >= q, t >= p``, each channel is ``max(p, min(min(v, max(q_or_t, A)), B))`` with 0/255
  planes ``A`` (the channel is ``v``) and ``B`` (it is not ``p``): ranges of the sector of H.
"""
from functools import lru_cache
from typing import Tuple

import cv2
import numpy as np
from PIL import Image

# rank of (r, g, b) among (max, mid, min) for each comparison code 4 (r >= g) | 2 (g >= b) |
# 1 (r >= b); codes 0b110 and 0b001 cannot occur
RANKS_OF_CODE = {0b111: (0, 1, 2), 0b101: (0, 2, 1), 0b100: (1, 2, 0), 0b011: (1, 0, 2),
                 0b010: (2, 0, 1), 0b000: (2, 1, 0)}
# the sector of H (0-5 in hsv2rgb's switch) plus one, mod 6; in that numbering, channel c is v in
# sectors 2c and 2c+1 and p in 2c+3 and 2c+4 (mod 6): the "not p" mask of each channel is the
# closed range given, inverted or not
SHIFTED_SECTOR = ((np.floor(np.arange(256) * 6.0 / 255.0).astype(np.int64) + 1) % 6).astype(np.uint8)
VALUE_SECTORS = ((0, 1), (2, 3), (4, 5))
NOT_LOW_SECTORS = ((3, 4, True), (1, 4, False), (1, 2, True))

Planes = Tuple[np.ndarray, np.ndarray, np.ndarray]


def _pil_convert(triples: np.ndarray, mode: str, to: str) -> np.ndarray:
    """PIL's conversion of ``(..., 3)`` integer triples from ``mode`` to ``to``, as ``(n, 3)``."""
    row = np.ascontiguousarray(triples.reshape(1, -1, 3), dtype=np.uint8)
    image = Image.frombytes(mode, (row.shape[1], 1), row.tobytes())
    return np.asarray(image.convert(to)).reshape(-1, 3)


@lru_cache(maxsize=None)
def _forward_tables() -> Tuple[np.ndarray, np.ndarray]:
    """H by ``code << 16 | (max - min) << 8 | (mid - min)``; S by ``max << 8 | (max - min)``."""
    spread, mid = np.meshgrid(np.arange(256), np.arange(256), indexing="ij")
    possible = mid <= spread
    hue = np.zeros((8, 256, 256), dtype=np.uint8)
    for code, ranks in RANKS_OF_CODE.items():  # representative: max = spread, min = 0
        by_rank = np.stack([spread, np.where(possible, mid, 0), np.zeros_like(spread)], axis=-1)
        hue[code] = _pil_convert(by_rank[..., list(ranks)], "RGB", "HSV")[:, 0].reshape(256, 256)
    top, spread = np.meshgrid(np.arange(256), np.arange(256), indexing="ij")
    low = np.clip(top - spread, 0, 255)
    saturation = _pil_convert(np.stack([top, low, low], axis=-1), "RGB", "HSV")[:, 1]
    saturation = np.where((spread <= top).reshape(-1), saturation, 0).astype(np.uint8)
    return hue.reshape(-1), saturation


@lru_cache(maxsize=None)
def _backward_tables() -> Tuple[np.ndarray, np.ndarray]:
    """The factor of ``q`` or ``t`` by ``s << 8 | h`` (float64) and ``p`` by ``s << 8 | v``."""
    scaled = np.arange(256, dtype=np.float64) * 6.0 / 255.0
    sector = np.floor(scaled)
    remainder = (scaled - sector).astype(np.float32)  # PIL: float f
    fs = (np.arange(256) / 255.0).astype(np.float32)[:, None]  # PIL: float fs, by s
    odd_sector = sector.astype(np.int64) % 6 % 2 == 1  # q there, t in even sectors
    factor_q = 1.0 - (fs * remainder).astype(np.float64)  # float * float, then double
    factor_t = 1.0 - fs.astype(np.float64) * (1.0 - remainder.astype(np.float64))
    factor = np.where(odd_sector, factor_q, factor_t).reshape(-1)
    value = np.arange(256, dtype=np.float64)
    low = np.floor(value * (1.0 - fs.astype(np.float64)) + 0.5).astype(np.uint8).reshape(-1)
    return factor, low


def _pack(*planes: np.ndarray) -> np.ndarray:
    """Little-endian keys from 2 or 4 uint8 planes (the first is the lowest byte)."""
    dtype = np.uint16 if len(planes) == 2 else np.uint32
    return cv2.merge(list(planes)).view(dtype)[..., 0]


def rgb_to_hsv(red: np.ndarray, green: np.ndarray, blue: np.ndarray) -> Planes:
    """PIL's ``convert("HSV")`` of uint8 planes of any equal 2-D shape."""
    hue_table, saturation_table = _forward_tables()
    top = cv2.max(cv2.max(red, green), blue)
    low = cv2.min(cv2.min(red, green), blue)
    spread = cv2.subtract(top, low)
    mid = cv2.bitwise_xor(cv2.bitwise_xor(cv2.bitwise_xor(red, green), cv2.bitwise_xor(blue, top)),
                          low)
    code = cv2.bitwise_or(cv2.bitwise_or(cv2.bitwise_and(cv2.compare(red, green, cv2.CMP_GE), 4),
                                         cv2.bitwise_and(cv2.compare(green, blue, cv2.CMP_GE), 2)),
                          cv2.bitwise_and(cv2.compare(red, blue, cv2.CMP_GE), 1))
    hue = hue_table.take(_pack(cv2.subtract(mid, low), spread, code, np.zeros_like(code)))
    return hue, saturation_table.take(_pack(spread, top)), top


def hsv_to_rgb(hue: np.ndarray, saturation: np.ndarray, value: np.ndarray) -> Planes:
    """PIL's ``convert("RGB")`` of uint8 HSV planes of any equal 2-D shape."""
    factor_table, low_table = _backward_tables()
    varying = factor_table.take(_pack(hue, saturation))
    np.multiply(varying, value, out=varying)
    varying = np.add(varying, 0.5, out=varying).astype(np.uint8)  # C's round of a value >= 0
    low = low_table.take(_pack(value, saturation))
    sectors = cv2.LUT(hue, SHIFTED_SECTOR)
    channels = []
    for (first, last), (low_first, low_last, invert) in zip(VALUE_SECTORS, NOT_LOW_SECTORS):
        high = cv2.min(value, cv2.max(varying, cv2.inRange(sectors, first, last)))
        not_low = cv2.inRange(sectors, low_first, low_last)
        if invert:
            not_low = cv2.bitwise_not(not_low)
        channels.append(cv2.max(low, cv2.min(high, not_low)))
    return channels[0], channels[1], channels[2]

"""PIL's 8-bit RGB <-> HSV conversions, bit-exact and vectorised, for the hue jitter of PIRL.

Paper Appendix A: the colour jitter includes "hue". The authors' config runs torchvision's
``ColorJitter`` on PIL images, whose ``adjust_hue`` converts to PIL's 8-bit ``HSV`` mode, shifts H
and converts back (``Convert.c``: ``rgb2hsv_row`` and ``hsv2rgb``, float arithmetic truncated to
8 bits). PIL converts one pixel at a time; here both directions run on whole uint8 planes with
OpenCV and small lookup tables, and equal PIL's output on every one of the 2**24 inputs
(``tests/data/test_hsv.py`` checks all of them):

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
from typing import Tuple

import cv2
import numpy as np

from vissl_pirl_plugin.data.transforms.common.hsv_tables import (
    NOT_LOW_SECTORS,
    SHIFTED_SECTOR,
    VALUE_SECTORS,
    backward_tables,
    forward_tables,
)

Planes = Tuple[np.ndarray, np.ndarray, np.ndarray]


def _pack(*planes: np.ndarray) -> np.ndarray:
    """Little-endian keys from 2 or 4 uint8 planes (the first is the lowest byte)."""
    dtype = np.uint16 if len(planes) == 2 else np.uint32
    return cv2.merge(list(planes)).view(dtype)[..., 0]


def rgb_to_hsv(red: np.ndarray, green: np.ndarray, blue: np.ndarray) -> Planes:
    """PIL's ``convert("HSV")`` of uint8 planes of any equal 2-D shape."""
    hue_table, saturation_table = forward_tables()
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
    factor_table, low_table = backward_tables()
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

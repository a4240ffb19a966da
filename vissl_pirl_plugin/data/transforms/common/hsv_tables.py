"""PIL's 8-bit RGB <-> HSV conversion as lookup tables, made by PIL itself: what the loader-side
(``per_image/hsv.py``, OpenCV) and device-side (``batched/hsv.py``, torch) hue jitters share.

Paper Appendix A: the colour jitter includes "hue", which the authors' config computes in PIL's
8-bit ``HSV`` mode. The conversion's logic, and why these tables make it bit-exact on every one
of the 2**24 colours, is described in ``per_image/hsv.py``.
"""
from functools import lru_cache
from typing import Tuple

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


def _pil_convert(triples: np.ndarray, mode: str, to: str) -> np.ndarray:
    """PIL's conversion of ``(..., 3)`` integer triples from ``mode`` to ``to``, as ``(n, 3)``."""
    row = np.ascontiguousarray(triples.reshape(1, -1, 3), dtype=np.uint8)
    image = Image.frombytes(mode, (row.shape[1], 1), row.tobytes())
    return np.asarray(image.convert(to)).reshape(-1, 3)


@lru_cache(maxsize=None)
def forward_tables() -> Tuple[np.ndarray, np.ndarray]:
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
def backward_tables() -> Tuple[np.ndarray, np.ndarray]:
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

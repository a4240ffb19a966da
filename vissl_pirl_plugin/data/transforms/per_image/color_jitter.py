"""Colour jitter of PIRL (paper Appendix A), vectorised over a batch of crops.

"random color jitter, hue, contrast, saturation": the operations and ranges of
torchvision's ``ColorJitter`` that the authors' config uses (brightness, contrast and
saturation factors uniform in ``[max(0, 1 - x), 1 + x]``, a hue shift uniform in ``[-h, h]``
turns, applied in a random order drawn per crop). Every crop of a batch (I, or the 9 jigsaw
patches) gets its own factors and order.

The ops are ``photometric.py``'s uint8 ones, equal to +-1 grey level to torchvision's ops on
the PIL images VISSL's ``ColorJitter`` works on (hue exactly). Hue, the costly op, runs once on
the whole batch; each other op runs, step by step, on the crops that have it at that step
before their hue, then on those that have it after: every crop still sees its own order.
"""
from typing import Dict, List, Sequence, Tuple

import numpy as np

from vissl_pirl_plugin.data.transforms.common.recipe import HUE, jitter_ranges
from vissl_pirl_plugin.data.transforms.per_image.photometric import (
    apply_to_rows,
    brightness,
    contrast,
    hue,
    saturation,
)

OPS = (brightness, contrast, saturation, hue)  # in the order of recipe's indices


class ColorJitter:
    """torchvision's ``ColorJitter(brightness, contrast, saturation, hue)`` on a batch of crops."""

    def __init__(self, strengths: Sequence[float] = (0.4, 0.4, 0.4, 0.2)) -> None:
        self.low, self.high, self.active = jitter_ranges(strengths)

    def __call__(self, crops: np.ndarray, uniforms: np.ndarray, orders: np.ndarray) -> np.ndarray:
        """uint8 ``(N, H, W, 3)`` -> uint8; ``uniforms`` ``(N, 4)`` in [0, 1) pick the factors,
        ``orders`` ``(N, 4)`` the op order of each crop."""
        if not any(self.active):
            return crops
        factors = self.low + (self.high - self.low) * uniforms
        crops = crops.copy()
        groups: Dict[Tuple[bool, int, int], List[int]] = {}  # (after hue?, step, op) -> crops
        for row, order in enumerate(orders.tolist()):
            hue_step = order.index(HUE)
            for step, op in enumerate(order):
                if op != HUE and self.active[op]:
                    groups.setdefault((step > hue_step, step, op), []).append(row)
        for phase in (False, True):  # before, then after each crop's hue
            if phase and self.active[HUE]:
                crops = hue(crops, factors[:, HUE])
            for (after_hue, _, op), rows in sorted(groups.items()):
                if after_hue == phase:
                    chosen = np.zeros(len(crops), dtype=bool)
                    chosen[rows] = True
                    apply_to_rows(crops, chosen, OPS[op], factors[:, op])
        return crops

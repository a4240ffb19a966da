"""The authors' per-crop recipe as both paths draw it: value ranges, the layout of a batch's random
numbers and the colour jitter's operations, shared by the loader workers (``per_image/``) and the
training device (``batched/``), so that the two draw the same values from the same numbers.

Paper Appendix A: "random values of color jitter, contrast, brightness, saturation, sharpness,
equalize etc."; the ranges are those of the authors' released config (VISSL 0.1.6's PIRL YAML and
``pil_photometric_transforms_lib.py``; torchvision's ``ColorJitter``), described in
``per_image/crop_augmentation.py``.
"""
from typing import List, Sequence, Tuple

import numpy as np

POSTERIZE_BITS = (4, 8)  # closed ranges of VISSL's pil_photometric_transforms_lib.py
SOLARIZE_THRESHOLD = (0, 256)
SHARPNESS_FACTOR = (0.1, 1.9)  # uniform in [0.1, 1.9)
BLUR_KERNEL = 23
# a batch's random numbers, drawn at once, by column: whether each op applies (jitter,
# photometric, grayscale, blur, flip: ``rates``), the 4 jitter factors, posterize bits,
# sharpness and solarize threshold, the blur sigma; then the jitter orders
DRAWS = 13
APPLY, JITTER_FACTORS, PHOTOMETRIC_VALUES, BLUR_SIGMA = slice(0, 5), slice(5, 9), slice(9, 12), 12

# the colour jitter's operations: indices into the factors and the per-crop orders
BRIGHTNESS, CONTRAST, SATURATION, HUE = range(4)


def jitter_ranges(strengths: Sequence[float]) -> Tuple[np.ndarray, np.ndarray, List[bool]]:
    """torchvision's ``ColorJitter(brightness, contrast, saturation, hue)`` ranges: float32 lows
    and highs (factors uniform in ``[max(0, 1 - x), 1 + x]``, the hue shift in ``[-h, h]``
    turns) and whether each operation is on."""
    if len(strengths) != 4:
        raise ValueError("color_jitter must be [brightness, contrast, saturation, hue], got "
                         f"{list(strengths)}.")
    *factors, hue_shift = (float(v) for v in strengths)
    if not 0 <= hue_shift <= 0.5:
        raise ValueError(f"color_jitter hue={hue_shift} must be in [0, 0.5].")
    ranges = [(max(0.0, 1 - v), 1 + v) for v in factors]
    low, high = (np.array(bound, dtype=np.float32)
                 for bound in zip(*ranges, (-hue_shift, hue_shift)))
    return low, high, [float(strength) > 0 for strength in strengths]

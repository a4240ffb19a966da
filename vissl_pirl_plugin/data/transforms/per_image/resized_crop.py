"""The random resized crop of PIRL's views (paper Appendix A.1), on uint8 tensors.

"we extract a random resized crop that occupies at least 60% of the image" for the jigsaw crop,
and the "standard data augmentation (flip, random resized crop, ...)" for ``I``: torchvision's
``RandomResizedCrop`` (area uniform in ``scale`` of the image, log-uniform aspect ratio in
``ratio``, 10 tries then a central crop), the distribution of VISSL's draws (drawn here at once
for the 10 tries, not one number at a time), resampled bilinearly as
PIL does on VISSL's PIL images. A region that is enlarged in both directions is resized by
OpenCV's bilinear resize (antialiasing does nothing when enlarging; OpenCV is several times
faster), one that is shrunk by torchvision's antialiased bilinear resize; both equal PIL's
``BILINEAR`` resize to +-1 grey level. The result is channels-last, as the input.
"""
import math
from typing import Sequence, Tuple

import cv2
import torch
from torchvision.transforms.v2.functional import resized_crop

TRIES = 10


def random_region(height: int, width: int, scale: Sequence[float],
                  ratio: Sequence[float]) -> Tuple[int, int, int, int]:
    """``(top, left, region height, region width)``: torchvision's ``RandomResizedCrop`` draw."""
    area = height * width
    log_low, log_high = math.log(ratio[0]), math.log(ratio[1])
    for area_draw, ratio_draw, top_draw, left_draw in torch.rand(TRIES, 4,
                                                                 dtype=torch.float64).tolist():
        target_area = area * (scale[0] + (scale[1] - scale[0]) * area_draw)
        aspect = math.exp(log_low + (log_high - log_low) * ratio_draw)
        region_width = int(round(math.sqrt(target_area * aspect)))
        region_height = int(round(math.sqrt(target_area / aspect)))
        if 0 < region_width <= width and 0 < region_height <= height:
            return (int(top_draw * (height - region_height + 1)),
                    int(left_draw * (width - region_width + 1)), region_height, region_width)
    in_ratio = width / height  # the fallback: the central crop of the closest aspect ratio
    region_width, region_height = width, height
    if in_ratio < min(ratio):
        region_height = int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        region_width = int(round(height * max(ratio)))
    return ((height - region_height) // 2, (width - region_width) // 2, region_height,
            region_width)


def resize_region(pixels: torch.Tensor, top: int, left: int, height: int, width: int,
                  size: int) -> torch.Tensor:
    """The region of uint8 ``(C, H, W)`` pixels resized to ``(C, size, size)``, channels-last."""
    if height <= size and width <= size:
        region = pixels.permute(1, 2, 0)[top:top + height, left:left + width].numpy()
        resized = cv2.resize(region, (size, size), interpolation=cv2.INTER_LINEAR)
        return torch.from_numpy(resized.reshape(size, size, -1)).permute(2, 0, 1)
    resized = resized_crop(pixels, top, left, height, width, [size, size], antialias=True)
    return resized.permute(1, 2, 0).contiguous().permute(2, 0, 1)


class RandomResizedCrop:
    """uint8 ``(C, H, W)`` -> uint8 ``(C, size, size)``, a random region resized."""

    def __init__(self, size: int, scale: Sequence[float] = (0.08, 1.0),
                 ratio: Sequence[float] = (3 / 4, 4 / 3)) -> None:
        low, high = (float(bound) for bound in scale)
        if not 0.0 < low <= high <= 1.0:
            raise ValueError(f"crop scale {list(scale)} must be [low, high] with "
                             "0 < low <= high <= 1 (fractions of the image area).")
        if not 0.0 < float(ratio[0]) <= float(ratio[1]):
            raise ValueError(f"crop ratio {list(ratio)} must be [low, high] aspect ratios (width / "
                             "height) with 0 < low <= high.")
        self.size = int(size)
        self.scale, self.ratio = [low, high], [float(bound) for bound in ratio]

    def __call__(self, pixels: torch.Tensor) -> torch.Tensor:
        region = random_region(pixels.shape[-2], pixels.shape[-1], self.scale, self.ratio)
        return resize_region(pixels, *region, self.size)

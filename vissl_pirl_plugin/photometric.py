"""Photometric augmentation shared by both PIRL branches (paper Appendix A).

"random color jitter, hue, contrast, saturation", on uint8 tensors. Options off
by default (not in the paper's text): random grayscale and Gaussian blur, used
by VISSL's model-zoo "blur" recipe; ``jitter_p`` < 1 applies the jitter at random.
"""
from typing import Sequence

import torch
from torchvision.transforms import v2


def photometric_augmentation(color_jitter: Sequence[float] = (0.4, 0.4, 0.4, 0.2),
                             jitter_p: float = 1.0, grayscale_p: float = 0.0,
                             blur_p: float = 0.0,
                             blur_sigma: Sequence[float] = (0.1, 2.0)) -> v2.Transform:
    """A uint8 ``(..., 3, H, W)`` -> uint8 transform drawing new parameters at each call."""
    if len(color_jitter) != 4:
        raise ValueError("color_jitter must be [brightness, contrast, saturation, hue], got "
                         f"{list(color_jitter)}.")
    steps = [v2.RandomApply([v2.ColorJitter(*color_jitter)], p=jitter_p),
             v2.RandomGrayscale(grayscale_p)]
    if blur_p > 0:
        steps.append(v2.RandomApply([v2.GaussianBlur(23, sigma=tuple(blur_sigma))], p=blur_p))
    return v2.Compose(steps)


def to_normalized_float(mean: Sequence[float], std: Sequence[float]) -> v2.Transform:
    return v2.Compose([v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(mean), list(std))])

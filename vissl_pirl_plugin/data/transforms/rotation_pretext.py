"""Rotation pretext transforms of PIRL: ``rotation`` and ``rotation_jigsaw`` (paper §4.3, App. A.2).

``rotation``: "we use the standard data augmentation described earlier (geometric
+ photometric) to get a 224 x 224 image, followed by a random rotation from
{0, 90, 180, 270} degrees". ``rotation_jigsaw``: "we obtain I^t by first applying
a rotation and then performing a Jigsaw transformation". The rotation is never
written into the label (VISSL's ``ImgRotatePil`` replaces the sample index with
the rotation class, which PIRL cannot use).
"""
from typing import Any, Sequence

import torch

from vissl_pirl_plugin.data.transforms.per_image.crop_augmentation import CropAugmentation
from vissl_pirl_plugin.data.transforms.jigsaw_pretext import JigsawPretext
from vissl_pirl_plugin.data.transforms.pretext import register_pretext
from vissl_pirl_plugin.data.transforms.per_image.resized_crop import RandomResizedCrop

NUM_ROTATIONS = 4


def rotate(pixels: torch.Tensor, quarter_turns: int) -> torch.Tensor:
    """Rotates ``(..., C, H, W)`` pixels counter-clockwise by ``quarter_turns * 90`` degrees."""
    return torch.rot90(pixels, quarter_turns, dims=(-2, -1))


def random_quarter_turns() -> int:
    return int(torch.randint(NUM_ROTATIONS, ()))


@register_pretext("rotation")
class RotationPretext:
    """uint8 ``(3, H, W)`` -> uint8 ``(3, crop_size, crop_size)``: cropped, augmented (the authors'
    per-crop recipe, ``CropAugmentation``'s arguments), then rotated."""

    def __init__(self, crop_size: int = 224, crop_scale: Sequence[float] = (0.08, 1.0),
                 **augmentation: Any) -> None:
        self.crop = RandomResizedCrop(crop_size, crop_scale)
        self.augment = CropAugmentation(**augmentation)

    def __call__(self, pixels: torch.Tensor) -> torch.Tensor:
        return rotate(self.augment(self.crop(pixels)), random_quarter_turns())


@register_pretext("rotation_jigsaw")
class RotationJigsawPretext:
    """Rotation by a random multiple of 90 degrees, then ``jigsaw`` (same arguments as it)."""

    def __init__(self, **jigsaw_params: Any) -> None:
        self.jigsaw = JigsawPretext(**jigsaw_params)

    def __call__(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.jigsaw(rotate(pixels, random_quarter_turns()))

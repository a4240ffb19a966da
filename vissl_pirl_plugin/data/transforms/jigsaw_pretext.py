"""The Jigsaw pretext transform of PIRL, registered as pretext ``jigsaw`` (paper Appendix A.1).

"we extract a random resized crop that occupies at least 60% of the image. We
resize this crop to 255 x 255, and then divide into a 3 x 3 grid. We extract a
patch of 64 x 64 from each of these grids and get 9 patches. We apply
photometric data augmentation (random color jitter, hue, contrast,
saturation) to each patch independently": the authors' per-crop recipe
(``crop_augmentation.py``, its arguments passed on), on each patch independently. The
patches are put in a random order: any of the 9! orders by default, or one of a fixed set of
``num_permutations`` (the |T| study of §4.2, Fig. 7; see ``permutations.py``).
"""
from typing import Any, Optional, Sequence

import torch

from vissl_pirl_plugin.data.transforms.per_image.crop_augmentation import CropAugmentation
from vissl_pirl_plugin.data.transforms.common.jigsaw import (
    extract_jigsaw_patches, jigsaw_cell, jigsaw_patch_offsets)
from vissl_pirl_plugin.data.transforms.common.permutations import permutation_set
from vissl_pirl_plugin.data.transforms.pretext import register_pretext
from vissl_pirl_plugin.data.transforms.per_image.resized_crop import RandomResizedCrop


@register_pretext("jigsaw")
class JigsawPretext:
    """uint8 ``(3, H, W)`` -> uint8 ``(grid_size**2, 3, patch_size, patch_size)`` patches."""

    def __init__(self, crop_size: int = 255, crop_scale: Sequence[float] = (0.6, 1.0),
                 grid_size: int = 3, patch_size: int = 64, num_permutations: Optional[int] = None,
                 permutation_seed: int = 0, permutation_selection: str = "maxhamming",
                 **augmentation: Any) -> None:
        jigsaw_cell(crop_size, grid_size, patch_size)  # checks the geometry, draws nothing
        self.grid_size = grid_size
        self.patch_size = patch_size
        self.crop = RandomResizedCrop(crop_size, crop_scale)
        self.augment = CropAugmentation(**augmentation)
        num_patches = grid_size * grid_size
        self.permutations = (None if num_permutations is None else permutation_set(
            int(num_permutations), num_patches, permutation_seed, permutation_selection))

    def permutation(self) -> torch.Tensor:
        """A random order of the patches, from all orders or from the fixed set."""
        if self.permutations is None:
            return torch.randperm(self.grid_size * self.grid_size)
        return self.permutations[torch.randint(len(self.permutations), ())]

    def __call__(self, pixels: torch.Tensor) -> torch.Tensor:
        crop = self.crop(pixels)
        offsets = jigsaw_patch_offsets(crop.shape[-1], self.grid_size, self.patch_size)
        patches = extract_jigsaw_patches(crop, offsets[self.permutation()], self.patch_size)
        return self.augment(patches)  # each patch with its own random parameters

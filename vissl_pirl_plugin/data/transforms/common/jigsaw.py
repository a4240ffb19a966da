"""Jigsaw patch geometry of PIRL (paper Appendix A.1).

"We resize this crop to 255 x 255, and then divide into a 3 x 3 grid. We extract
a patch of 64 x 64 from each of these grids and get 9 patches." Each patch lies
at a uniformly random position inside its own cell (Noroozi & Favaro's gap
between patches), drawn as the authors' code draws it: VISSL's ``ImgPatchesFromTensor``
takes ``np.random.randint(0, patch_jitter)`` with ``patch_jitter = cell - patch``, offsets 0
to 20 in an 85-px cell, so a patch always ends at least one pixel before its cell does and
neighbouring patches never touch. Pure tensor logic, no VISSL.
"""
from functools import lru_cache
from typing import Optional

import numpy as np
import torch


def jigsaw_cell(crop_size: int, grid_size: int, patch_size: int) -> int:
    """The side of a grid cell, once the geometry is checked: a patch must fit in its cell with
    room to move."""
    if grid_size < 1:
        raise ValueError(f"grid_size must be >= 1, got {grid_size}.")
    cell = crop_size // grid_size
    if not 1 <= patch_size < cell:
        raise ValueError(
            f"patch_size={patch_size} does not fit in a grid cell of {cell} pixels with room "
            f"to move (crop_size={crop_size} // grid_size={grid_size}). Use patch_size <= "
            f"{cell - 1}.")
    return cell


def jigsaw_patch_offsets(crop_size: int = 255, grid_size: int = 3, patch_size: int = 64,
                         generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Top-left corners ``(grid_size**2, 2)`` of one random patch per grid cell.

    Cells are ``crop_size // grid_size`` pixels wide and listed row by row; a patch's offset in
    its cell is uniform in ``[0, cell - patch_size)`` along each axis, as in VISSL.
    """
    cell = jigsaw_cell(crop_size, grid_size, patch_size)
    jitter = torch.randint(0, cell - patch_size, (grid_size * grid_size, 2), generator=generator)
    return cell_corners(grid_size, cell) + jitter


@lru_cache(maxsize=None)
def cell_corners(grid_size: int, cell: int) -> torch.Tensor:
    """Top-left corners ``(grid_size**2, 2)`` of the grid's cells, row by row (never modify it:
    it is cached)."""
    rows, cols = torch.meshgrid(torch.arange(grid_size), torch.arange(grid_size), indexing="ij")
    return torch.stack([rows.reshape(-1), cols.reshape(-1)], dim=1) * cell


def extract_jigsaw_patches(image: torch.Tensor, offsets: torch.Tensor,
                           patch_size: int) -> torch.Tensor:
    """Cuts ``(num_patches, C, patch_size, patch_size)`` patches, channels-last, out of a
    ``(C, H, W)`` image."""
    pixels = image.permute(1, 2, 0).numpy()
    patches = np.stack([pixels[top:top + patch_size, left:left + patch_size]
                        for top, left in offsets.tolist()])
    return torch.from_numpy(patches).permute(0, 3, 1, 2)

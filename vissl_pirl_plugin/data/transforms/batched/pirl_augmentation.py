"""``DevicePirlAugmentation``: the pair ``[I, I^t]`` of PIRL (paper §2, App. A.1) made from a batch of
uint8 images on the training device (``+config/pretrain/pirl/augmentation=on_device``).

With ``on_device: true`` the loader workers of ``ImgPilToPirlPair`` / ``ImgPilToPirlJigsaw`` only
decode and cap the image; ``pirl_collator`` pads the batch into one uint8 canvas. This module
then does what ``ImgPilToPirlPair.__call__`` does per image, for the whole batch at once and with
the same arguments, read from that transform:

* ``I``: the random resized crop (``resized_crop.py``), the per-crop recipe
  (``crop_augmentation.py``), the normalisation;
* ``I^t`` for the ``jigsaw`` pretext: the jigsaw crop resized to 255, one 64-px patch per cell of
  its 3 x 3 grid at VISSL's offsets (0 to 20 in an 85-px cell), the patches in a random order
  (all 9! or the fixed set), each patch augmented on its own; for ``rotation``: the crop, the
  recipe, a random multiple of 90 degrees; no pretext (NPID++): ``I`` alone.

Every random value comes from the ``torch.Generator`` passed in (seeded per step by the train
step, so a resumed run draws the same values). ``rotation_jigsaw`` and pretexts of the user's own
have no batched version: they keep the loader-side path, and asking for ``on_device`` with them
is refused when the transform is built.
"""
from typing import Dict, Optional

import torch

from vissl_pirl_plugin.data.transforms.batched.crop_augmentation import BatchedCropAugmentation
from vissl_pirl_plugin.data.transforms.batched.resized_crop import random_regions, resize_regions
from vissl_pirl_plugin.data.transforms.per_image.crop_augmentation import CropAugmentation
from vissl_pirl_plugin.data.transforms.batched.device_constants import on_device
from vissl_pirl_plugin.data.transforms.common.jigsaw import cell_corners
from vissl_pirl_plugin.data.transforms.jigsaw_pretext import JigsawPretext
from vissl_pirl_plugin.data.transforms.common.normalization import NormalizedFloat
from vissl_pirl_plugin.data.transforms.per_image.resized_crop import RandomResizedCrop
from vissl_pirl_plugin.data.transforms.pirl_pair_transform import ImgPilToPirlPair, check_device_pretext
from vissl_pirl_plugin.data.transforms.rotation_pretext import NUM_ROTATIONS, RotationPretext

class BatchedResizedCrop:
    """A ``RandomResizedCrop`` of every image of a padded canvas (``crops``), and the per-crop
    recipe that its caller then applies (``augment``)."""

    def __init__(self, crop: RandomResizedCrop, recipe: CropAugmentation) -> None:
        self.size, self.scale, self.ratio = crop.size, crop.scale, crop.ratio
        self.augment = BatchedCropAugmentation(recipe)

    def crops(self, canvas: torch.Tensor, sizes: torch.Tensor,
              generator: torch.Generator) -> torch.Tensor:
        """uint8 ``(N, 3, size, size)`` crops, not yet augmented."""
        return resize_regions(canvas, random_regions(sizes, self.scale, self.ratio, generator),
                              self.size)


class DevicePirlAugmentation:
    """uint8 canvas ``(N, H, W, 3)`` + sizes ``(N, 2)`` -> ``{image_key: I, transformed_key: I^t}``,
    float32, channels-last, as ``pirl_collator`` makes them from the workers' views."""

    def __init__(self, transform: ImgPilToPirlPair, image_key: str = "images",
                 transformed_key: str = "patches") -> None:
        """``transform``: the ``ImgPilToPirlPair`` whose arguments are followed."""
        pretext = transform.pretext
        check_device_pretext(pretext)
        self.image = BatchedResizedCrop(transform.crop, transform.augment)
        self.pretext = pretext
        self.view: Optional[BatchedResizedCrop] = (
            None if pretext is None else BatchedResizedCrop(pretext.crop, pretext.augment))
        self.normalize: NormalizedFloat = transform.normalize
        self.image_key, self.transformed_key = image_key, transformed_key

    def __call__(self, canvas: torch.Tensor, sizes: torch.Tensor,
                 generator: torch.Generator) -> Dict[str, torch.Tensor]:
        """The normalised views of the batch, every random value drawn from ``generator``."""
        pixels = canvas.permute(0, 3, 1, 2)
        image = self.image.crops(pixels, sizes, generator)
        views = {self.image_key: self.image.augment(image, generator)}
        if isinstance(self.pretext, JigsawPretext):
            views[self.transformed_key] = self.jigsaw(pixels, sizes, generator)
        elif isinstance(self.pretext, RotationPretext):
            views[self.transformed_key] = self.rotation(pixels, sizes, generator)
        return {key: self.normalized(view) for key, view in views.items()}

    def jigsaw(self, pixels: torch.Tensor, sizes: torch.Tensor,
               generator: torch.Generator) -> torch.Tensor:
        """uint8 ``(N * P, 3, patch, patch)`` patches, sample-major, each augmented on its own."""
        crop = self.view.crops(pixels, sizes, generator)
        grid, patch = self.pretext.grid_size, self.pretext.patch_size
        count, device, num_patches = len(crop), crop.device, grid * grid
        cell = crop.shape[-1] // grid
        offsets = on_device(cell_corners(grid, cell), device) + torch.randint(
            0, cell - patch, (count, num_patches, 2), generator=generator, device=device)
        if self.pretext.permutations is None:
            order = torch.rand(count, num_patches, generator=generator, device=device).argsort(1)
        else:
            permutations = on_device(self.pretext.permutations, device)
            order = permutations[torch.randint(len(permutations), (count,), generator=generator,
                                               device=device)]
        offsets = offsets.gather(1, order[:, :, None].expand(-1, -1, 2))
        steps = torch.arange(patch, device=device)
        rows = (offsets[:, :, 0, None] + steps)[:, :, :, None]
        columns = (offsets[:, :, 1, None] + steps)[:, :, None, :]
        samples = torch.arange(count, device=device).reshape(-1, 1, 1, 1)
        patches = crop.permute(0, 2, 3, 1)[samples, rows, columns]  # (N, P, patch, patch, 3)
        patches = patches.reshape(count * num_patches, patch, patch, 3).permute(0, 3, 1, 2)
        return self.view.augment(patches, generator)

    def rotation(self, pixels: torch.Tensor, sizes: torch.Tensor,
                 generator: torch.Generator) -> torch.Tensor:
        """uint8 ``(N, 3, size, size)``: crop, recipe, then a random multiple of 90 degrees."""
        view = self.view.augment(self.view.crops(pixels, sizes, generator), generator)
        turns = torch.randint(NUM_ROTATIONS, (len(view), 1, 1, 1), generator=generator,
                              device=view.device)
        rotated = view
        for quarter_turns in range(1, NUM_ROTATIONS):
            rotated = torch.where(turns == quarter_turns, torch.rot90(view, quarter_turns, (2, 3)),
                                  rotated)
        return rotated

    def normalized(self, view: torch.Tensor) -> torch.Tensor:
        """float32 ``(x / 255 - mean) / std`` per channel, channels-last (``NormalizedFloat``)."""
        shift = on_device(self.normalize.shift, view.device).reshape(1, 3, 1, 1)
        scale = on_device(self.normalize.scale, view.device).reshape(1, 3, 1, 1)
        view = view.contiguous(memory_format=torch.channels_last)
        return (view.to(torch.float32) - shift).mul_(scale)

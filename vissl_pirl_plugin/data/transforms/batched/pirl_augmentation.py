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
step, so a resumed run draws the same values), drawn first (``draw``: the same calls, in the
same order, as the per-view code drew them); the rest (``views``) is a pure function of the
canvas, the sizes and those draws. On CUDA it runs compiled (``torch.compile``, inductor): its
elementwise chains, reductions and gathers fuse into a few dozen kernels, where eager PyTorch
launches one per operator (issue 26: at most 100 launches per batch, ``LaunchCounter``); its
outputs equal the eager ones bit for bit (tested on the CPU). ``compile`` chooses it on other
devices. ``rotation_jigsaw`` and pretexts of the user's own have no batched version: they keep
the loader-side path, and asking for ``on_device`` with them is refused when the transform is
built.
"""
from typing import Any, Callable, Dict, Optional, Tuple

import torch

from vissl_pirl_plugin.data.transforms.batched import packed_pixels as packed
from vissl_pirl_plugin.data.transforms.batched.crop_augmentation import BatchedCropAugmentation
from vissl_pirl_plugin.data.transforms.batched.device_constants import on_device
from vissl_pirl_plugin.data.transforms.batched.hsv import Tables, device_tables
from vissl_pirl_plugin.data.transforms.batched.resized_crop import (
    full_precision,
    region_draws,
    regions_of,
    resized_in_full_precision,
)
from vissl_pirl_plugin.data.transforms.common.jigsaw import cell_corners
from vissl_pirl_plugin.data.transforms.common.normalization import NormalizedFloat
from vissl_pirl_plugin.data.transforms.jigsaw_pretext import JigsawPretext
from vissl_pirl_plugin.data.transforms.per_image.crop_augmentation import CropAugmentation
from vissl_pirl_plugin.data.transforms.per_image.resized_crop import RandomResizedCrop
from vissl_pirl_plugin.data.transforms.pirl_pair_transform import ImgPilToPirlPair, check_device_pretext
from vissl_pirl_plugin.data.transforms.rotation_pretext import NUM_ROTATIONS, RotationPretext

# inductor's options for the views: no fused multiply-add on CUDA (Triton's fp fusion off), as
# PIL's float32 blends and float64 tables round each product (the CPU backend never contracts)
COMPILE_OPTIONS = {"emulate_precision_casts": True}
Draws = Dict[str, Any]


class BatchedResizedCrop:
    """A ``RandomResizedCrop`` of every image of a padded canvas (``regions``), and the per-crop
    recipe that its caller then applies (``augment``)."""

    def __init__(self, crop: RandomResizedCrop, recipe: CropAugmentation) -> None:
        self.size, self.scale, self.ratio = crop.size, crop.scale, crop.ratio
        self.augment = BatchedCropAugmentation(recipe)

    def regions(self, sizes: torch.Tensor, draws: torch.Tensor) -> Tuple[torch.Tensor, int]:
        """The regions of values ``draws`` (``region_draws``) and the size to resize them to."""
        return regions_of(sizes, draws, self.scale, self.ratio), self.size


class DevicePirlAugmentation:
    """uint8 canvas ``(N, H, W, 3)`` + sizes ``(N, 2)`` -> ``{image_key: I, transformed_key: I^t}``,
    float32, channels-last, as ``pirl_collator`` makes them from the workers' views."""

    def __init__(self, transform: ImgPilToPirlPair, image_key: str = "images",
                 transformed_key: str = "patches", compile: Optional[bool] = None) -> None:
        """``transform``: the ``ImgPilToPirlPair`` whose arguments are followed; ``compile``:
        whether ``views`` runs compiled (``None``: on CUDA devices only)."""
        pretext = transform.pretext
        check_device_pretext(pretext)
        self.image = BatchedResizedCrop(transform.crop, transform.augment)
        self.pretext = pretext
        self.view: Optional[BatchedResizedCrop] = (
            None if pretext is None else BatchedResizedCrop(pretext.crop, pretext.augment))
        self.normalize: NormalizedFloat = transform.normalize
        self.image_key, self.transformed_key = image_key, transformed_key
        self.compile = compile
        self.compiled: Optional[Callable[..., Dict[str, torch.Tensor]]] = None

    def __call__(self, canvas: torch.Tensor, sizes: torch.Tensor,
                 generator: torch.Generator) -> Dict[str, torch.Tensor]:
        """The normalised views of the batch, every random value drawn from ``generator``."""
        draws = self.draw(sizes, generator)
        device = canvas.device
        views = self.views
        if self.compile or (self.compile is None and device.type == "cuda"):
            if self.compiled is None:
                self.compiled = torch.compile(self.views, options=COMPILE_OPTIONS)
            views = self.compiled
            for dim in (1, 2):  # one compiled graph for canvases of any height and width
                torch._dynamo.maybe_mark_dynamic(canvas, dim)
        with full_precision(device):
            return views(canvas, sizes, draws, self.constants(device))

    def draw(self, sizes: torch.Tensor, generator: torch.Generator) -> Draws:
        """Every random value of the batch, in the order ``ImgPilToPirlPair`` draws them per
        image: I's region and recipe; then the jigsaw crop's region, the patch offsets (0 to 20
        in an 85-px cell), the patch order (all 9! or the fixed set) and each patch's recipe;
        or the rotation view's region, recipe and quarter turns."""
        count, device = len(sizes), sizes.device
        draws: Draws = {"image_region": region_draws(count, generator, device),
                        "image": self.image.augment.draw(count, generator, device)}
        if isinstance(self.pretext, JigsawPretext):
            grid, patch = self.pretext.grid_size, self.pretext.patch_size
            num_patches = grid * grid
            draws["view_region"] = region_draws(count, generator, device)
            draws["offsets"] = torch.randint(0, self.view.size // grid - patch,
                                             (count, num_patches, 2), generator=generator,
                                             device=device)
            if self.pretext.permutations is None:
                draws["order"] = torch.rand(count, num_patches, generator=generator,
                                            device=device).argsort(1)
            else:
                permutations = on_device(self.pretext.permutations, device)
                draws["order"] = permutations[torch.randint(
                    len(permutations), (count,), generator=generator, device=device)]
            draws["view"] = self.view.augment.draw(count * num_patches, generator, device)
        elif isinstance(self.pretext, RotationPretext):
            draws["view_region"] = region_draws(count, generator, device)
            draws["view"] = self.view.augment.draw(count, generator, device)
            draws["turns"] = torch.randint(NUM_ROTATIONS, (count, 1, 1, 1), generator=generator,
                                           device=device)
        return draws

    def constants(self, device: torch.device) -> Dict[str, Any]:
        """The constant tensors ``views`` uses, on ``device`` (copied there once)."""
        constants = {"hsv": device_tables(device),
                     "shift": on_device(self.normalize.shift, device),
                     "scale": on_device(self.normalize.scale, device)}
        if isinstance(self.pretext, JigsawPretext):
            grid = self.pretext.grid_size
            constants["corners"] = on_device(cell_corners(grid, self.view.size // grid), device)
        return constants

    def views(self, canvas: torch.Tensor, sizes: torch.Tensor, draws: Draws,
              constants: Dict[str, Any]) -> Dict[str, torch.Tensor]:
        """The normalised views of the batch with the values ``draws``: a pure function of the
        canvas, the sizes, the draws and the constants, inside the caller's ``full_precision``."""
        crops = [self.image.regions(sizes, draws["image_region"])]
        if self.view is not None:
            crops.append(self.view.regions(sizes, draws["view_region"]))
        crops = [packed.pack(crop) for crop in
                 resized_in_full_precision(canvas.permute(0, 3, 1, 2), crops)]
        tables = constants["hsv"]
        views = {self.image_key: self.image.augment.augment(crops[0], draws["image"], tables)}
        if isinstance(self.pretext, JigsawPretext):
            views[self.transformed_key] = self.jigsaw(crops[1], draws, constants)
        elif isinstance(self.pretext, RotationPretext):
            views[self.transformed_key] = self.rotation(crops[1], draws, tables)
        return {key: self.normalized(view, constants) for key, view in views.items()}

    def jigsaw(self, crop: torch.Tensor, draws: Draws, constants: Dict[str, Any]) -> torch.Tensor:
        """Packed ``(N * P, patch, patch)`` patches of the packed jigsaw ``crop``, sample-major,
        each augmented on its own."""
        patch, count, device = self.pretext.patch_size, len(crop), crop.device
        offsets = constants["corners"] + draws["offsets"]
        offsets = offsets.gather(1, draws["order"][:, :, None].expand(-1, -1, 2))
        steps = torch.arange(patch, device=device)
        rows = (offsets[:, :, 0, None] + steps)[:, :, :, None]
        columns = (offsets[:, :, 1, None] + steps)[:, :, None, :]
        samples = torch.arange(count, device=device).reshape(-1, 1, 1, 1)
        patches = crop[samples, rows, columns]  # (N, P, patch, patch): one gather
        return self.view.augment.augment(patches.reshape(-1, patch, patch), draws["view"],
                                         constants["hsv"])

    def rotation(self, crop: torch.Tensor, draws: Draws, tables: Tables) -> torch.Tensor:
        """Packed ``(N, size, size)``: the packed ``crop``, its recipe, then a random multiple of
        90 degrees."""
        view = self.view.augment.augment(crop, draws["view"], tables)
        rotated = view
        for quarter_turns in range(1, NUM_ROTATIONS):
            rotated = torch.where(draws["turns"].reshape(-1, 1, 1) == quarter_turns,
                                  torch.rot90(view, quarter_turns, (1, 2)), rotated)
        return rotated

    @staticmethod
    def normalized(view: torch.Tensor, constants: Dict[str, Any]) -> torch.Tensor:
        """float32 ``(x / 255 - mean) / std`` per channel of packed pixels, channels-last
        (``NormalizedFloat``)."""
        view = packed.unpack(view).contiguous(memory_format=torch.channels_last)
        shift, scale = (constants[key].reshape(1, 3, 1, 1) for key in ("shift", "scale"))
        return (view.to(torch.float32) - shift).mul_(scale)

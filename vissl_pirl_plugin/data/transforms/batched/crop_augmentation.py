"""The per-crop augmentation of PIRL, batched in torch on the training device.

Paper Appendix A and the authors' released config, as ``crop_augmentation.py`` describes them:
``ColorJitter(0.4, 0.4, 0.4, 0.2)`` in a random order drawn per crop, ``ImgPilRandomPhotometric``
(p = 0.66: posterize 4-8 bits, sharpness 0.1-1.9, solarize threshold 0-256, autocontrast),
``RandomGrayscale(0.2)``, the optional Gaussian blur and the flip, on I and, independently, on
every patch. ``CropAugmentation`` runs them in the loader workers; ``BatchedCropAugmentation``
takes such a recipe and runs the same operations (``packed_pixels.py``) on a batch of crops,
uint8 ``(N, 3, H, W)`` or packed, on the training device
(``+config/pretrain/pirl/augmentation=on_device``). Every crop draws its own values, from the
same distributions and with the same layout of draws as ``CropAugmentation``, from the
``torch.Generator`` it is given.

Without host reads: an operation applied with probability p runs on the whole batch and
``torch.where`` keeps it for the crops that drew it. The random values are drawn first, in one
place (``draw``), so that the rest (``augment``) is a pure function of the crops and the draws,
which ``torch.compile`` can fuse (``pirl_augmentation.py``). The colour jitter shifts the hue of
the whole batch once and blends each crop (brightness, contrast and saturation blend it with
black, its mean luma or its grayscale version, ``ImageEnhance``) at each of its steps before
and after its hue.
"""
from typing import NamedTuple, Optional, Sequence, Union

import torch

from vissl_pirl_plugin.data.transforms.batched import packed_pixels as packed
from vissl_pirl_plugin.data.transforms.batched.hsv import Tables, device_tables
from vissl_pirl_plugin.data.transforms.batched.photometric import gaussian_blur
from vissl_pirl_plugin.data.transforms.common.recipe import (
    APPLY,
    BLUR_KERNEL,
    BLUR_SIGMA,
    CONTRAST,
    DRAWS,
    HUE,
    JITTER_FACTORS,
    PHOTOMETRIC_VALUES,
    POSTERIZE_BITS,
    SHARPNESS_FACTOR,
    SOLARIZE_THRESHOLD,
)
from vissl_pirl_plugin.data.transforms.per_image.color_jitter import ColorJitter
from vissl_pirl_plugin.data.transforms.per_image.crop_augmentation import CropAugmentation

JITTER_STEPS = 4


class CropDraws(NamedTuple):
    """A batch of crops' random values: ``values`` ``(N, DRAWS)`` float64 in ``recipe.py``'s
    layout and ``orders`` ``(N, 4)`` int64, the order of each crop's colour jitter ops."""

    values: torch.Tensor
    orders: torch.Tensor


def _uniform_int(uniforms: torch.Tensor, bounds: Sequence[int]) -> torch.Tensor:
    """Integers uniform in the closed range ``bounds`` from uniforms in [0, 1)."""
    low, high = bounds
    return (low + torch.floor(uniforms * (high - low + 1))).to(torch.int64)


class BatchedCropAugmentation:
    """uint8 ``(N, 3, H, W)`` -> uint8 ``(N, 3, H, W)`` on the crops' device, every crop with its own
    random parameters: the recipe of a ``CropAugmentation`` (its rates, strengths and checks)."""

    def __init__(self, recipe: CropAugmentation) -> None:
        self.color_jitter: ColorJitter = recipe.color_jitter
        self.photometric_p, self.grayscale_p = recipe.photometric_p, recipe.grayscale_p
        self.blur_p, self.flip_p, self.blur_sigma = recipe.blur_p, recipe.flip_p, recipe.blur_sigma
        # float32 bounds as ColorJitter's, the factors computed in float64 as numpy does there
        self.jitter_bounds = [(float(low), float(high)) for low, high in
                              zip(self.color_jitter.low, self.color_jitter.high)]
        self.rates = [float(rate) for rate in recipe.rates]

    def __call__(self, crops: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """The ops in the authors' order; draws as ``CropAugmentation.augment``'s."""
        draws = self.draw(len(crops), generator, crops.device)
        return packed.unpack(self.augment(packed.pack(crops), draws, device_tables(crops.device)))

    @staticmethod
    def draw(count: int, generator: torch.Generator, device: torch.device) -> CropDraws:
        """The random values of ``count`` crops, as ``CropAugmentation.augment`` draws them."""
        values = torch.rand(count, DRAWS, dtype=torch.float64, generator=generator, device=device)
        orders = torch.rand(count, JITTER_STEPS, generator=generator, device=device).argsort(dim=1)
        return CropDraws(values, orders)

    def augment(self, pixels: torch.Tensor, draws: CropDraws, tables: Tables) -> torch.Tensor:
        """The ops in the authors' order on packed pixels (``packed_pixels``) with the values
        ``draws``: a pure function of the pixels, the draws and ``hsv.device_tables``."""
        values = draws.values
        jitter, photometric, gray, blur, flipped = (
            values[:, column] < rate for column, rate in zip(range(APPLY.stop), self.rates))
        if any(self.color_jitter.active):
            pixels = packed.where_chosen(jitter, self.jittered(
                pixels, values[:, JITTER_FACTORS], draws.orders, tables), pixels)
        if self.photometric_p > 0:
            pixels = packed.where_chosen(
                photometric, self.photometric(pixels, values[:, PHOTOMETRIC_VALUES]), pixels)
        if self.grayscale_p > 0:
            pixels = packed.where_chosen(gray, packed.grayscale(pixels), pixels)
        if self.blur_p > 0:
            low, high = self.blur_sigma
            sigmas = low + (high - low) * values[:, BLUR_SIGMA]
            blurred = packed.pack(gaussian_blur(packed.unpack(pixels), sigmas, BLUR_KERNEL))
            pixels = packed.where_chosen(blur, blurred, pixels)
        if self.flip_p > 0:
            pixels = packed.where_chosen(flipped, packed.flip(pixels), pixels)
        return pixels

    def jitter(self, crops: torch.Tensor, uniforms: torch.Tensor,
               orders: torch.Tensor) -> torch.Tensor:
        """``jittered`` on uint8 ``(N, 3, H, W)`` crops."""
        return packed.unpack(self.jittered(packed.pack(crops), uniforms, orders,
                                           device_tables(crops.device)))

    def jittered(self, pixels: torch.Tensor, uniforms: torch.Tensor, orders: torch.Tensor,
                 tables: Tables) -> torch.Tensor:
        """torchvision's ``ColorJitter`` with each crop's factors and order, as ``ColorJitter``
        runs it: the hue once for the whole batch, each blend op at its step before the crop's
        hue, then those after it (a blend with factor 1 leaves a crop as it is). Contrast blends
        with the mean luma of the crop as its earlier steps left it. Eager, every step takes the
        means of the crops it blends; compiled, the steps before each crop's contrast run once
        more, for those means alone (one reduction where inductor makes a kernel per step's)."""
        factors = torch.stack([low + (high - low) * uniforms[:, op]
                               for op, (low, high) in enumerate(self.jitter_bounds)], dim=1)
        hue_step = (orders == HUE).to(torch.int64).argmax(dim=1)
        means: Optional[Union[torch.Tensor, int]] = (
            None if self.color_jitter.active[CONTRAST] else 0)
        if means is None and torch.compiler.is_compiling():
            contrast_step = (orders == CONTRAST).to(torch.int64).argmax(dim=1)
            before_contrast = self._jitter_steps(pixels, factors, orders, hue_step, contrast_step,
                                                 0, tables)
            means = packed.mean_luma(packed.luma(before_contrast))
        return self._jitter_steps(pixels, factors, orders, hue_step, JITTER_STEPS, means, tables)

    def _jitter_steps(self, pixels: torch.Tensor, factors: torch.Tensor, orders: torch.Tensor,
                      hue_step: torch.Tensor, until: Union[torch.Tensor, int],
                      means: Optional[Union[torch.Tensor, int]], tables: Tables) -> torch.Tensor:
        """Each crop's jitter steps before ``until`` (``(N,)`` or all 4), contrast blending with
        ``means`` (``None``: each step's own; a number where contrast is not among them)."""
        for after_hue in (False, True):
            if after_hue and self.color_jitter.active[HUE]:
                shifted = packed.hue(pixels, factors[:, HUE], tables)
                pixels = shifted if isinstance(until, int) else packed.where_chosen(
                    hue_step < until, shifted, pixels)
            for step in (range(1, JITTER_STEPS) if after_hue else range(JITTER_STEPS - 1)):
                op = orders[:, step]
                chosen = ((step > hue_step) if after_hue else (step < hue_step)) & (step < until)
                factor = torch.where(chosen, factors.gather(1, op[:, None])[:, 0], 1.0)
                step_means = packed.mean_luma(packed.luma(pixels)) if means is None else means
                pixels = packed.blend(pixels, packed.enhance_base(pixels, op, step_means), factor)
        return pixels

    @staticmethod
    def photometric(pixels: torch.Tensor, uniforms: torch.Tensor) -> torch.Tensor:
        """``ImgPilRandomPhotometric``: posterize, sharpness, solarize, autocontrast."""
        low, high = SHARPNESS_FACTOR
        pixels = packed.posterize(pixels, _uniform_int(uniforms[:, 0], POSTERIZE_BITS))
        pixels = packed.sharpness(pixels, low + (high - low) * uniforms[:, 1])
        pixels = packed.solarize(pixels, _uniform_int(uniforms[:, 2], SOLARIZE_THRESHOLD))
        return packed.autocontrast(pixels)


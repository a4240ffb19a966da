"""The per-crop augmentation of PIRL, batched in torch on the training device.

Paper Appendix A and the authors' released config, as ``crop_augmentation.py`` describes them:
``ColorJitter(0.4, 0.4, 0.4, 0.2)`` in a random order drawn per crop, ``ImgPilRandomPhotometric``
(p = 0.66: posterize 4-8 bits, sharpness 0.1-1.9, solarize threshold 0-256, autocontrast),
``RandomGrayscale(0.2)``, the optional Gaussian blur and the flip, on I and, independently, on
every patch. ``CropAugmentation`` runs them in the loader workers; ``BatchedCropAugmentation``
takes such a recipe and runs the same operations (``photometric.py``) on a uint8
``(N, 3, H, W)`` batch of crops on the training device
(``+config/pretrain/pirl/augmentation=on_device``). Every crop draws its own values, from the
same distributions and with the same layout of draws as ``CropAugmentation``, from the
``torch.Generator`` it is given.

Without host reads: an operation applied with probability p runs on the whole batch and
``torch.where`` keeps it for the crops that drew it. The colour jitter shifts the hue of the
whole batch once and blends each crop (brightness, contrast and saturation blend it with black,
its mean luma or its grayscale version, ``ImageEnhance``) at each of its steps before and after
its hue.
"""
from typing import Sequence

import torch

from vissl_pirl_plugin.data.transforms.batched import photometric as ops
from vissl_pirl_plugin.data.transforms.batched.device_constants import on_device
from vissl_pirl_plugin.data.transforms.common.recipe import (
    APPLY,
    BLUR_KERNEL,
    BLUR_SIGMA,
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


def _uniform_int(uniforms: torch.Tensor, bounds: Sequence[int]) -> torch.Tensor:
    """Integers uniform in the closed range ``bounds`` from uniforms in [0, 1)."""
    low, high = bounds
    return (low + torch.floor(uniforms * (high - low + 1))).to(torch.int64)


def _where(chosen: torch.Tensor, changed: torch.Tensor, crops: torch.Tensor) -> torch.Tensor:
    return torch.where(chosen.reshape(-1, 1, 1, 1), changed, crops)


class BatchedCropAugmentation:
    """uint8 ``(N, 3, H, W)`` -> uint8 ``(N, 3, H, W)`` on the crops' device, every crop with its own
    random parameters: the recipe of a ``CropAugmentation`` (its rates, strengths and checks)."""

    def __init__(self, recipe: CropAugmentation) -> None:
        self.color_jitter: ColorJitter = recipe.color_jitter
        self.photometric_p, self.grayscale_p = recipe.photometric_p, recipe.grayscale_p
        self.blur_p, self.flip_p, self.blur_sigma = recipe.blur_p, recipe.flip_p, recipe.blur_sigma
        self.jitter_low = torch.from_numpy(self.color_jitter.low).double()
        self.jitter_high = torch.from_numpy(self.color_jitter.high).double()
        self.jitter_active = torch.tensor(self.color_jitter.active)
        self.rates = torch.tensor(recipe.rates, dtype=torch.float64)

    def __call__(self, crops: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """The ops in the authors' order; draws as ``CropAugmentation.augment``'s."""
        count, device = len(crops), crops.device
        draws = torch.rand(count, DRAWS, dtype=torch.float64, generator=generator, device=device)
        orders = torch.rand(count, 4, generator=generator, device=device).argsort(dim=1)
        jitter, photometric, gray, blur, flipped = (
            draws[:, APPLY] < on_device(self.rates, device)).unbind(1)
        if any(self.color_jitter.active):
            crops = _where(jitter, self.jitter(crops, draws[:, JITTER_FACTORS], orders), crops)
        if self.photometric_p > 0:
            crops = _where(photometric, self.photometric(crops, draws[:, PHOTOMETRIC_VALUES]),
                           crops)
        if self.grayscale_p > 0:
            crops = _where(gray, ops.grayscale(crops), crops)
        if self.blur_p > 0:
            low, high = self.blur_sigma
            sigmas = low + (high - low) * draws[:, BLUR_SIGMA]
            crops = _where(blur, ops.gaussian_blur(crops, sigmas, BLUR_KERNEL), crops)
        if self.flip_p > 0:
            crops = _where(flipped, ops.flip(crops), crops)
        return crops

    def jitter(self, crops: torch.Tensor, uniforms: torch.Tensor,
               orders: torch.Tensor) -> torch.Tensor:
        """torchvision's ``ColorJitter`` with each crop's factors and order, as ``ColorJitter``
        runs it: the hue once for the whole batch, each blend op at its step before the crop's
        hue, then those after it (a blend with factor 1 leaves a crop as it is)."""
        low, high = on_device(self.jitter_low, crops.device), on_device(self.jitter_high,
                                                                        crops.device)
        factors = low + (high - low) * uniforms  # float64, as ColorJitter's (PIL's alpha: float32)
        active = on_device(self.jitter_active, crops.device)
        hue_step = (orders == HUE).to(torch.int64).argmax(dim=1)
        for after_hue in (False, True):
            if after_hue and self.color_jitter.active[HUE]:
                crops = ops.hue(crops, factors[:, HUE])
            for step in (range(1, 4) if after_hue else range(3)):
                op = orders[:, step]
                chosen = active[op] & ((step > hue_step) if after_hue else (step < hue_step))
                factor = torch.where(chosen, factors.gather(1, op[:, None])[:, 0], 1.0)
                crops = ops.blend(crops, ops.enhance_base(crops, op), factor)
        return crops

    @staticmethod
    def photometric(crops: torch.Tensor, uniforms: torch.Tensor) -> torch.Tensor:
        """``ImgPilRandomPhotometric``: posterize, sharpness, solarize, autocontrast."""
        low, high = SHARPNESS_FACTOR
        crops = ops.posterize(crops, _uniform_int(uniforms[:, 0], POSTERIZE_BITS))
        crops = ops.sharpness(crops, low + (high - low) * uniforms[:, 1])
        crops = ops.solarize(crops, _uniform_int(uniforms[:, 2], SOLARIZE_THRESHOLD))
        return ops.autocontrast(crops)

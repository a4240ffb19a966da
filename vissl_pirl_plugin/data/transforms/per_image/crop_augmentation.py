"""The per-crop augmentation of PIRL: the authors' recipe, applied to I and to every patch of I^t.

Paper Appendix A: the photometric pre-processing alters colours "by using random values of
color jitter, contrast, brightness, saturation, sharpness, equalize etc." on the image and on
each patch independently. The authors' released config (VISSL 0.1.6's
``configs/config/pretrain/pirl/pirl_jigsaw_4node_resnet50.yaml``) lists, in this order, for
the image and each of the 9 patches: ``ColorJitter(0.4, 0.4, 0.4, 0.2)``;
``ImgPilRandomPhotometric`` (p = 0.66: posterize 4-8 bits, sharpness 0.1-1.9, solarize
threshold 0-256, autocontrast); ``RandomGrayscale(0.2)``; ``RandomHorizontalFlip(0.5)``.
Those are the defaults here. ``photometric_p = grayscale_p = 0`` and (for patches)
``flip_p = 0`` give the colour-jitter-only recipe of earlier releases
(``+config/pretrain/pirl/augmentation=color_jitter_only``); ``jitter_p`` and the Gaussian blur
(``blur_p``, after grayscale) are VISSL model-zoo options (``augmentation=gaussian_blur``).

The whole batch of crops (the 9 patches at once) goes through each op as one uint8
``(N, H, W, 3)`` array; every crop draws its own parameters, from the distributions VISSL
draws them from.
"""
from typing import Sequence

import cv2
import numpy as np
import torch

from vissl_pirl_plugin.data.transforms.common.recipe import (
    APPLY,
    BLUR_KERNEL,
    BLUR_SIGMA,
    DRAWS,
    JITTER_FACTORS,
    PHOTOMETRIC_VALUES,
    POSTERIZE_BITS,
    SHARPNESS_FACTOR,
    SOLARIZE_THRESHOLD,
)
from vissl_pirl_plugin.data.transforms.per_image.color_jitter import ColorJitter
from vissl_pirl_plugin.data.transforms.per_image.photometric import (
    apply_to_rows,
    autocontrast,
    flip,
    grayscale,
    posterize,
    sharpness,
    solarize,
)


def _uniform_int(uniforms: np.ndarray, bounds: Sequence[int]) -> np.ndarray:
    """Integers uniform in the closed range ``bounds`` from uniforms in [0, 1)."""
    low, high = bounds
    return (low + np.floor(uniforms * (high - low + 1))).astype(np.int64)


class CropAugmentation:
    """uint8 ``(3, H, W)`` or ``(N, 3, H, W)`` tensor -> uint8 tensor of the same shape, every crop
    with its own random parameters."""

    def __init__(self, color_jitter: Sequence[float] = (0.4, 0.4, 0.4, 0.2), jitter_p: float = 1.0,
                 photometric_p: float = 0.66, grayscale_p: float = 0.2, blur_p: float = 0.0,
                 blur_sigma: Sequence[float] = (0.1, 2.0), flip_p: float = 0.5) -> None:
        for name, value in (("jitter_p", jitter_p), ("photometric_p", photometric_p),
                            ("grayscale_p", grayscale_p), ("blur_p", blur_p), ("flip_p", flip_p)):
            if not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"{name}={value} is a probability: use a value in [0, 1].")
        self.color_jitter = ColorJitter(color_jitter)
        self.jitter_p, self.photometric_p = float(jitter_p), float(photometric_p)
        self.grayscale_p, self.blur_p = float(grayscale_p), float(blur_p)
        self.flip_p = float(flip_p)
        self.blur_sigma = tuple(float(s) for s in blur_sigma)
        self.rates = (self.jitter_p, self.photometric_p, self.grayscale_p, self.blur_p,
                      self.flip_p)  # the APPLY columns' probabilities

    def __call__(self, pixels: torch.Tensor) -> torch.Tensor:
        single = pixels.dim() == 3
        batch = pixels.unsqueeze(0) if single else pixels
        crops = batch.permute(0, 2, 3, 1).numpy().copy()  # never writes into the caller's pixels
        result = torch.from_numpy(self.augment(crops)).permute(0, 3, 1, 2)
        return result[0] if single else result

    def augment(self, crops: np.ndarray) -> np.ndarray:
        """uint8 ``(N, H, W, 3)`` -> uint8 ``(N, H, W, 3)``, the ops in the authors' order."""
        count = len(crops)
        draws = torch.rand(count, DRAWS, dtype=torch.float64).numpy()
        orders = torch.rand(count, 4).argsort(dim=1).numpy()
        jitter, photometric, gray, blur, flipped = (draws[:, APPLY] < self.rates).T
        apply_to_rows(crops, jitter, self.color_jitter, draws[:, JITTER_FACTORS], orders)
        apply_to_rows(crops, photometric, self.photometric, draws[:, PHOTOMETRIC_VALUES])
        apply_to_rows(crops, gray, grayscale)
        apply_to_rows(crops, blur, self.blur, draws[:, BLUR_SIGMA])
        apply_to_rows(crops, flipped, flip)
        return crops

    @staticmethod
    def photometric(crops: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
        """``ImgPilRandomPhotometric``: posterize, sharpness, solarize, autocontrast."""
        low, high = SHARPNESS_FACTOR
        crops = posterize(crops, _uniform_int(uniforms[:, 0], POSTERIZE_BITS))
        crops = sharpness(crops, low + (high - low) * uniforms[:, 1])
        crops = solarize(crops, _uniform_int(uniforms[:, 2], SOLARIZE_THRESHOLD))
        return autocontrast(crops)

    def blur(self, crops: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
        """VISSL's ``ImgPilGaussianBlur``, a sigma uniform in ``blur_sigma`` per crop."""
        low, high = self.blur_sigma
        return np.stack([cv2.GaussianBlur(crop, (BLUR_KERNEL, BLUR_KERNEL),
                                          low + (high - low) * float(uniform),
                                          borderType=cv2.BORDER_REFLECT_101)
                         for crop, uniform in zip(crops, uniforms)])

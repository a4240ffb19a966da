"""Photometric augmentation of PIRL (paper Appendix A), fast on the CPU.

"random color jitter, hue, contrast, saturation": the operations and ranges of
torchvision's ``ColorJitter`` (brightness, contrast and saturation factors
uniform in ``[max(0, 1 - x), 1 + x]``, a hue shift uniform in ``[-h, h]`` turns,
applied in a random order drawn per image), then optional random grayscale and
Gaussian blur (off by default; VISSL model-zoo options). Each image of a batch
(the 9 jigsaw patches) gets its own random parameters.

Images are processed as float32 HWC arrays with numpy and OpenCV (its HSV
conversion is several times faster than torchvision's tensor ``adjust_hue``)
and rounded once at the end; outputs agree with torchvision's to +-1 grey level.
"""
from typing import Sequence

import cv2
import numpy as np
import torch

GRAY_WEIGHTS = np.array([0.2989, 0.587, 0.114], dtype=np.float32)  # ITU-R 601-2, as torchvision
cv2.setNumThreads(1)  # data-loader workers are the unit of parallelism


def grayscale(image: np.ndarray) -> np.ndarray:
    """``(..., H, W, 1)`` luma of float RGB ``(..., H, W, 3)``."""
    return image @ GRAY_WEIGHTS[:, None]


def adjust_brightness(image: np.ndarray, factor: float) -> np.ndarray:
    return np.clip(image * factor, 0.0, 1.0, out=image)


def adjust_contrast(image: np.ndarray, factor: float) -> np.ndarray:
    mean = float(grayscale(image).mean())
    return np.clip(factor * image + (1 - factor) * mean, 0.0, 1.0)


def adjust_saturation(image: np.ndarray, factor: float) -> np.ndarray:
    return np.clip(factor * image + (1 - factor) * grayscale(image), 0.0, 1.0)


def adjust_hue(image: np.ndarray, shift: float) -> np.ndarray:
    """Rotates the hue of float RGB in [0, 1] by ``shift`` turns (HSV, as torchvision)."""
    hsv = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2HSV)
    hsv[..., 0] = np.mod(hsv[..., 0] + 360.0 * shift, 360.0)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


class PhotometricAugmentation:
    """uint8 ``(3, H, W)`` or ``(N, 3, H, W)`` tensor -> uint8 tensor of the same shape."""

    def __init__(self, color_jitter: Sequence[float] = (0.4, 0.4, 0.4, 0.2), jitter_p: float = 1.0,
                 grayscale_p: float = 0.0, blur_p: float = 0.0,
                 blur_sigma: Sequence[float] = (0.1, 2.0)) -> None:
        if len(color_jitter) != 4:
            raise ValueError("color_jitter must be [brightness, contrast, saturation, hue], got "
                             f"{list(color_jitter)}.")
        brightness, contrast, saturation, hue = (float(v) for v in color_jitter)
        if not 0 <= hue <= 0.5:
            raise ValueError(f"color_jitter hue={hue} must be in [0, 0.5].")
        self.ranges = [(max(0.0, 1 - brightness), 1 + brightness, brightness > 0),
                       (max(0.0, 1 - contrast), 1 + contrast, contrast > 0),
                       (max(0.0, 1 - saturation), 1 + saturation, saturation > 0),
                       (-hue, hue, hue > 0)]
        self.ops = [adjust_brightness, adjust_contrast, adjust_saturation, adjust_hue]
        self.jitter_p, self.grayscale_p = jitter_p, grayscale_p
        self.blur_p, self.blur_sigma = blur_p, tuple(blur_sigma)

    def __call__(self, pixels: torch.Tensor) -> torch.Tensor:
        single = pixels.dim() == 3
        batch = pixels.unsqueeze(0) if single else pixels
        images = batch.permute(0, 2, 3, 1).numpy().astype(np.float32) * np.float32(1 / 255)
        # all random draws of the batch at once: [apply jitter, 4 factors, grayscale, blur, sigma]
        draws = torch.rand(len(images), 8).numpy()
        orders = torch.rand(len(images), len(self.ops)).argsort(dim=1).numpy()
        out = np.stack([self.augment(image, d, o) for image, d, o in zip(images, draws, orders)])
        result = torch.from_numpy(np.rint(out * 255.0).astype(np.uint8)).permute(0, 3, 1, 2)
        return result[0] if single else result

    def augment(self, image: np.ndarray, draws: np.ndarray, order: np.ndarray) -> np.ndarray:
        """One float HWC image; ``draws`` are 8 uniform [0, 1) numbers, ``order`` the op order."""
        if draws[0] < self.jitter_p:
            for op_index in order:
                low, high, active = self.ranges[op_index]
                if active:
                    image = self.ops[op_index](image, low + (high - low) * float(draws[1 + op_index]))
        if draws[5] < self.grayscale_p:
            image = np.repeat(grayscale(image), 3, axis=-1)
        if draws[6] < self.blur_p:
            low, high = self.blur_sigma
            sigma = low + (high - low) * float(draws[7])
            image = cv2.GaussianBlur(image, (23, 23), sigma, borderType=cv2.BORDER_REFLECT_101)
        return image

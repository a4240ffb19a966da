"""PIL's photometric operations of the authors' PIRL recipe, batched in torch on the training device.

Paper Appendix A: "random values of color jitter, contrast, brightness, saturation, sharpness,
equalize etc.", as the authors' released config runs them (VISSL 0.1.6's PIRL YAML: torchvision's
``ColorJitter`` on PIL images, ``ImgPilRandomPhotometric``, ``RandomGrayscale``, VISSL's Gaussian
blur option). ``per_image/photometric.py`` runs them in the loader workers with OpenCV; here the same
operations run as torch operations on uint8 ``(N, 3, H, W)`` crops with per-crop parameters
``(N,)`` tensors on the crops' device (``+config/pretrain/pirl/augmentation=on_device``), each
equal to PIL's output exactly.

Each op packs the crops' pixels, runs ``packed_pixels``' op (what ``crop_augmentation.py``
chains, PIL's arithmetic described there) and unpacks them; the Gaussian blur runs on the uint8
crops. No operation reads a value back to the host, so none waits for the device.
"""
from typing import Callable, Optional

import torch
import torch.nn.functional as F

from vissl_pirl_plugin.data.transforms.batched import packed_pixels as packed
from vissl_pirl_plugin.data.transforms.batched.hsv import Tables, device_tables
from vissl_pirl_plugin.data.transforms.common.recipe import BRIGHTNESS, CONTRAST, SATURATION


def _on_packed(op: Callable[..., torch.Tensor], crops: torch.Tensor, *params) -> torch.Tensor:
    return packed.unpack(op(packed.pack(crops), *params))


def grayscale(crops: torch.Tensor) -> torch.Tensor:
    """``convert("L")`` then back to 3 channels (torchvision's ``RandomGrayscale`` on PIL)."""
    return _on_packed(packed.grayscale, crops)


def flip(crops: torch.Tensor) -> torch.Tensor:
    """``transpose(FLIP_LEFT_RIGHT)`` of every crop."""
    return crops.flip(-1)


def _enhance(crops: torch.Tensor, factors: torch.Tensor, op: int) -> torch.Tensor:
    pixels = packed.pack(crops)
    ops = torch.full((len(crops),), op, device=crops.device)
    means = packed.mean_luma(packed.luma(pixels))
    return packed.unpack(packed.blend(pixels, packed.enhance_base(pixels, ops, means), factors))


def brightness(crops: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    """``ImageEnhance.Brightness``: blends with black."""
    return _enhance(crops, factors, BRIGHTNESS)


def contrast(crops: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    """``ImageEnhance.Contrast``: blends with the crop's mean luma, rounded to an integer."""
    return _enhance(crops, factors, CONTRAST)


def saturation(crops: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    """``ImageEnhance.Color``: blends with the crop's grayscale version."""
    return _enhance(crops, factors, SATURATION)


def hue(crops: torch.Tensor, shifts: torch.Tensor, tables: Optional[Tables] = None) -> torch.Tensor:
    """torchvision's ``adjust_hue`` on PIL: PIL's 8-bit HSV, hue + ``int(shift * 255)`` mod 256
    (``tables``: ``hsv.device_tables`` of the crops' device, looked up when not given)."""
    return _on_packed(packed.hue, crops, shifts, tables or device_tables(crops.device))


def posterize(crops: torch.Tensor, bits: torch.Tensor) -> torch.Tensor:
    """``ImageOps.posterize``: keeps the top ``bits`` (4 to 8) bits of every channel."""
    return _on_packed(packed.posterize, crops, bits)


def solarize(crops: torch.Tensor, thresholds: torch.Tensor) -> torch.Tensor:
    """``ImageOps.solarize``: inverts every value ``>= threshold`` (0 to 256)."""
    return _on_packed(packed.solarize, crops, thresholds)


def sharpness(crops: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    """``ImageEnhance.Sharpness``: blends the ``SMOOTH``-filtered crop (rounded; the border pixels
    kept, as PIL's 3 x 3 filter leaves them) with the crop; 0 = smooth, 1 = unchanged."""
    return _on_packed(packed.sharpness, crops, factors)


def autocontrast(crops: torch.Tensor) -> torch.Tensor:
    """``ImageOps.autocontrast`` (no cutoff): stretches each channel of each crop to 0-255 through
    PIL's table."""
    return _on_packed(packed.autocontrast, crops)


@torch.compiler.disable
def gaussian_blur(crops: torch.Tensor, sigmas: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """A Gaussian blur of ``kernel_size`` taps and a sigma per crop, reflected at the borders and
    rounded (as ``cv2.GaussianBlur`` does for the loader workers): VISSL's ``ImgPilGaussianBlur``
    option. Its convolutions run without TF32 on a GPU. Eager even inside a compiled caller: a
    compiled float32 ``exp`` may differ from ATen's in the last bit, which moves rounded pixels
    (and its cuDNN flags cannot be traced)."""
    count, channels, height, width = crops.shape
    taps = torch.arange(kernel_size, device=crops.device, dtype=torch.float32) - kernel_size // 2
    weights = torch.exp(-(taps ** 2) / (2 * sigmas.to(torch.float32).reshape(-1, 1) ** 2))
    weights = (weights / weights.sum(dim=1, keepdim=True)).repeat_interleave(channels, dim=0)
    pad = kernel_size // 2
    planes = crops.reshape(1, count * channels, height, width).to(torch.float32)
    planes = F.pad(planes, (pad, pad, pad, pad), mode="reflect")
    cudnn = torch.backends.cudnn
    with cudnn.flags(enabled=cudnn.enabled, benchmark=cudnn.benchmark,
                     deterministic=cudnn.deterministic, allow_tf32=False):
        planes = F.conv2d(planes, weights.reshape(-1, 1, 1, kernel_size), groups=count * channels)
        planes = F.conv2d(planes, weights.reshape(-1, 1, kernel_size, 1), groups=count * channels)
    return torch.floor(planes + 0.5).clamp_(0, 255).to(torch.uint8).reshape(crops.shape)

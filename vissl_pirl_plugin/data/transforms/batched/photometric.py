"""PIL's photometric operations of the authors' PIRL recipe, batched in torch on the training device.

Paper Appendix A: "random values of color jitter, contrast, brightness, saturation, sharpness,
equalize etc.", as the authors' released config runs them (VISSL 0.1.6's PIRL YAML: torchvision's
``ColorJitter`` on PIL images, ``ImgPilRandomPhotometric``, ``RandomGrayscale``, VISSL's Gaussian
blur option). ``per_image/photometric.py`` runs them in the loader workers with OpenCV; here the same
operations run as torch operations on uint8 ``(N, 3, H, W)`` crops with per-crop parameters
``(N,)`` tensors on the crops' device (``+config/pretrain/pirl/augmentation=on_device``).

PIL's arithmetic is followed where it is cheap to: luma is PIL's fixed-point ``L24`` (exact),
blends are computed in float32 and truncated as ``Image.blend`` does, the 3 x 3 ``SMOOTH`` filter
is summed in integers, rounded and keeps the border pixels, ``autocontrast`` builds PIL's 256-entry table per crop and
channel in float64, and the hue goes through PIL's own HSV (``hsv.py``, exact). No
operation reads a value back to the host, so none waits for the device.
"""
import torch
import torch.nn.functional as F

from vissl_pirl_plugin.data.transforms.batched.hsv import hsv_to_rgb, rgb_to_hsv
from vissl_pirl_plugin.data.transforms.batched.device_constants import on_device
from vissl_pirl_plugin.data.transforms.common.recipe import BRIGHTNESS, CONTRAST, SATURATION

# PIL's L24: (r, g, b) . weights + 0x8000 >> 16
LUMA_WEIGHTS = torch.tensor([19595, 38470, 7471], dtype=torch.int32).reshape(1, 3, 1, 1)
LEVELS = torch.arange(256, dtype=torch.float64)


def _per_crop(values: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``(N,)`` parameters as ``(N, 1, 1, 1)``, to broadcast over crops."""
    return values.to(dtype).reshape(-1, 1, 1, 1)


def luma(crops: torch.Tensor) -> torch.Tensor:
    """``(N, 1, H, W)`` int32 ITU-R 601-2 luma, exactly PIL's ``convert("L")``."""
    weights = on_device(LUMA_WEIGHTS, crops.device)
    return ((crops.to(torch.int32) * weights).sum(dim=1, keepdim=True) + 0x8000) >> 16


def grayscale(crops: torch.Tensor) -> torch.Tensor:
    """``convert("L")`` then back to 3 channels (torchvision's ``RandomGrayscale`` on PIL)."""
    return luma(crops).to(torch.uint8).expand_as(crops).contiguous()


def flip(crops: torch.Tensor) -> torch.Tensor:
    """``transpose(FLIP_LEFT_RIGHT)`` of every crop."""
    return crops.flip(-1)


def blend(crops: torch.Tensor, degenerate: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    """``Image.blend(degenerate, crop, factor)`` per crop (``ImageEnhance``'s ``enhance``):
    ``degenerate + factor * (crop - degenerate)`` in float32, clipped and truncated as PIL does."""
    degenerate = degenerate.to(torch.float32)
    mixed = degenerate + _per_crop(factors) * (crops.to(torch.float32) - degenerate)
    return mixed.clamp_(0, 255).to(torch.uint8)  # truncation: values are >= 0


def mean_luma(gray: torch.Tensor) -> torch.Tensor:
    """``(N, 1, 1, 1)`` ``int(mean + 0.5)`` of each crop's ``luma`` ``(N, 1, H, W)``
    (``ImageEnhance.Contrast``)."""
    sums = gray.sum(dim=(1, 2, 3), dtype=torch.float64)
    return torch.floor(sums / (gray.shape[-2] * gray.shape[-1]) + 0.5).reshape(-1, 1, 1, 1)


def enhance_base(crops: torch.Tensor, ops: torch.Tensor) -> torch.Tensor:
    """What ``ImageEnhance`` blends each crop with for its op ``ops`` ``(N,)`` (``color_jitter``'s
    indices): black (``Brightness``), the crop's mean luma rounded to an integer (``Contrast``),
    its grayscale version (``Color``, the saturation); ``(N, 1, H, W)`` int32."""
    gray = luma(crops)
    base = torch.where((ops == CONTRAST).reshape(-1, 1, 1, 1), mean_luma(gray), 0).to(torch.int32)
    return torch.where((ops == SATURATION).reshape(-1, 1, 1, 1), gray, base)


def _enhance(crops: torch.Tensor, factors: torch.Tensor, op: int) -> torch.Tensor:
    ops = torch.full((len(crops),), op, device=crops.device)
    return blend(crops, enhance_base(crops, ops), factors)


def brightness(crops: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    """``ImageEnhance.Brightness``: blends with black."""
    return _enhance(crops, factors, BRIGHTNESS)


def contrast(crops: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    """``ImageEnhance.Contrast``: blends with the crop's mean luma, rounded to an integer."""
    return _enhance(crops, factors, CONTRAST)


def saturation(crops: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    """``ImageEnhance.Color``: blends with the crop's grayscale version."""
    return _enhance(crops, factors, SATURATION)


def hue(crops: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """torchvision's ``adjust_hue`` on PIL: PIL's 8-bit HSV, hue + ``int(shift * 255)`` mod 256."""
    hsv = rgb_to_hsv(crops)
    offsets = (shifts.to(torch.float64) * 255).to(torch.int64).reshape(-1, 1, 1)  # C's truncation
    hsv[:, 0] = ((hsv[:, 0].to(torch.int64) + offsets) % 256).to(torch.uint8)
    return hsv_to_rgb(hsv)


def posterize(crops: torch.Tensor, bits: torch.Tensor) -> torch.Tensor:
    """``ImageOps.posterize``: keeps the top ``bits`` (4 to 8) bits of every channel."""
    masks = (255 << (8 - bits.to(torch.int64))) & 255
    return crops & _per_crop(masks, torch.uint8)


def solarize(crops: torch.Tensor, thresholds: torch.Tensor) -> torch.Tensor:
    """``ImageOps.solarize``: inverts every value ``>= threshold`` (0 to 256)."""
    return torch.where(crops.to(torch.int64) >= _per_crop(thresholds, torch.int64), 255 - crops,
                       crops)


def sharpness(crops: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    """``ImageEnhance.Sharpness``: blends the ``SMOOTH``-filtered crop (rounded; the border pixels
    kept, as PIL's 3 x 3 filter leaves them) with the crop; 0 = smooth, 1 = unchanged. The filter
    is summed in integers and divided by 13 once (exact: no convolution, so no TF32 on a GPU)."""
    pixels = crops.to(torch.int32)
    height, width = crops.shape[-2:]
    total = 4 * pixels[:, :, 1:-1, 1:-1]  # the centre's weight 5 = 4 + its own 1 below
    for dy in range(3):
        for dx in range(3):
            total = total + pixels[:, :, dy:dy + height - 2, dx:dx + width - 2]
    degenerate = crops.to(torch.float32)  # border pixels: the crop's own
    degenerate[:, :, 1:-1, 1:-1] = torch.floor(total.to(torch.float32) / 13 + 0.5)
    return blend(crops, degenerate, factors)


def autocontrast(crops: torch.Tensor) -> torch.Tensor:
    """``ImageOps.autocontrast`` (no cutoff): stretches each channel of each crop to 0-255, through
    PIL's table ``int(level * 255 / (hi - lo) - lo * 255 / (hi - lo))`` (float64)."""
    count, channels = crops.shape[:2]
    flat = crops.reshape(count, channels, -1)
    low = flat.amin(dim=2).to(torch.float64).unsqueeze(2)
    high = flat.amax(dim=2).to(torch.float64).unsqueeze(2)
    level = high <= low  # nothing to stretch: the identity table
    scale = torch.where(level, 1.0, 255.0 / torch.where(level, 1.0, high - low))
    offset = torch.where(level, 0.0, -low * scale)
    tables = (on_device(LEVELS, crops.device) * scale + offset).clamp_(0, 255).to(torch.uint8)
    return tables.gather(2, flat.to(torch.int64)).reshape(crops.shape)


def gaussian_blur(crops: torch.Tensor, sigmas: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """A Gaussian blur of ``kernel_size`` taps and a sigma per crop, reflected at the borders and
    rounded (as ``cv2.GaussianBlur`` does for the loader workers): VISSL's ``ImgPilGaussianBlur``
    option. Its convolutions run without TF32 on a GPU."""
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

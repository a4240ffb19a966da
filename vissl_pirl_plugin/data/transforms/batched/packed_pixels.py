"""PIL's photometric operations of the authors' PIRL recipe on packed pixels: a batch of crops as
one int32 ``(N, H, W)`` tensor holding ``R << 16 | G << 8 | B`` per pixel.

Paper Appendix A: "random values of color jitter, contrast, brightness, saturation, sharpness,
equalize etc.", as the authors' released config runs them (VISSL 0.1.6's PIRL YAML:
torchvision's ``ColorJitter`` on PIL images, ``ImgPilRandomPhotometric``, ``RandomGrayscale``).
``photometric.py`` gives each as an op on uint8 ``(N, 3, H, W)`` crops (what the tests check
against PIL); ``crop_augmentation.py`` chains them on packed pixels.

Why packed: a pixel's three channels are one value, so an op that mixes them (luma, the
saturation blend, the hue through PIL's HSV) reads its input once per pixel. A chain of such
ops is then a chain of elementwise maps of one tensor, which ``torch.compile`` fuses into one
kernel (with three channel planes, every op would read the previous op's result three times,
and inductor would write each intermediate result out: one kernel per op). Eager, the packed
ops cost a few more launches than channel planes; the device path runs compiled on CUDA.

PIL's arithmetic, exactly: luma is PIL's fixed-point ``L24``, blends are computed in float32
and truncated as ``Image.blend`` does, the 3 x 3 ``SMOOTH`` filter is summed and rounded in
integers and keeps the border pixels, ``autocontrast`` computes each pixel's entry of PIL's
256-entry table in float64, and the hue goes through PIL's own HSV (``hsv.py``). No multiply-add
is contracted where PIL rounds the product (``pirl_augmentation.COMPILE_OPTIONS``). Per-crop
parameters are ``(N,)`` tensors on the pixels' device; no operation reads a value back to the
host, so none waits for the device.
"""
from typing import Union

import torch

from vissl_pirl_plugin.data.transforms.batched.hsv import Channels, Tables, hsv_to_rgb, rgb_to_hsv
from vissl_pirl_plugin.data.transforms.common.recipe import CONTRAST, SATURATION

SHIFTS = (16, 8, 0)  # R, G, B
LUMA_WEIGHTS = (19595, 38470, 7471)  # PIL's L24: (r, g, b) . weights + 0x8000 >> 16


def pack(crops: torch.Tensor) -> torch.Tensor:
    """uint8 ``(N, 3, H, W)`` crops -> int32 ``(N, H, W)`` packed pixels."""
    return join(*crops.to(torch.int32).unbind(1))


def unpack(pixels: torch.Tensor) -> torch.Tensor:
    """int32 ``(N, H, W)`` packed pixels -> uint8 ``(N, 3, H, W)`` crops."""
    return torch.stack(split(pixels), dim=1).to(torch.uint8)


def split(pixels: torch.Tensor) -> Channels:
    """The R, G, B channels (int32, 0-255) of packed pixels."""
    return tuple((pixels >> shift) & 255 for shift in SHIFTS)


def join(red: torch.Tensor, green: torch.Tensor, blue: torch.Tensor) -> torch.Tensor:
    """Packed int32 pixels of integer channels in 0-255."""
    return (red.to(torch.int32) << 16) | (green.to(torch.int32) << 8) | blue.to(torch.int32)


def per_crop(values: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``(N,)`` parameters as ``(N, 1, 1)``, to broadcast over the crops' pixels."""
    return values.to(dtype).reshape(-1, 1, 1)


def luma(pixels: torch.Tensor) -> torch.Tensor:
    """int32 ITU-R 601-2 luma, exactly PIL's ``convert("L")``."""
    red, green, blue = split(pixels)
    weighted = red * LUMA_WEIGHTS[0] + green * LUMA_WEIGHTS[1] + blue * LUMA_WEIGHTS[2]
    return (weighted + 0x8000) >> 16


def grayscale(pixels: torch.Tensor) -> torch.Tensor:
    """``convert("L")`` then back to 3 channels (torchvision's ``RandomGrayscale`` on PIL)."""
    return luma(pixels) * 0x010101


def mean_luma(gray: torch.Tensor) -> torch.Tensor:
    """``(N, 1, 1)`` ``int(mean + 0.5)`` of each crop's ``luma`` (``ImageEnhance.Contrast``), in
    float64 (sums of integers: exact in any order)."""
    sums = gray.sum(dim=(1, 2), dtype=torch.float64)
    return torch.floor(sums / (gray.shape[-2] * gray.shape[-1]) + 0.5).reshape(-1, 1, 1)


def blend_channel(channel: torch.Tensor, degenerate: torch.Tensor,
                  factors: torch.Tensor) -> torch.Tensor:
    """``Image.blend(degenerate, image, factor)`` of one channel: ``degenerate + factor *
    (channel - degenerate)`` in float32 (``factors`` ``(N, 1, 1)`` float32), clipped and truncated
    as PIL does; int32."""
    degenerate = degenerate.to(torch.float32)
    mixed = degenerate + factors * (channel.to(torch.float32) - degenerate)
    return mixed.clamp(0, 255).to(torch.int32)  # truncation: values are >= 0


def blend(pixels: torch.Tensor, degenerate: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    """``ImageEnhance``'s ``enhance``: every channel blended with the same ``degenerate``
    (integers broadcasting to the pixels), by each crop's factor ``(N,)``."""
    factors, degenerate = per_crop(factors, torch.float32), degenerate.to(torch.float32)
    return join(*(blend_channel(channel, degenerate, factors) for channel in split(pixels)))


def enhance_base(pixels: torch.Tensor, ops: torch.Tensor,
                 means: Union[torch.Tensor, int]) -> torch.Tensor:
    """What ``ImageEnhance`` blends each crop with for its op ``ops`` ``(N,)`` (``recipe``'s
    indices): black (``Brightness``), the crop's mean luma rounded to an integer (``Contrast``:
    ``means``, ``mean_luma`` of the crops, or any number where no crop's op is contrast), its
    grayscale version (``Color``, the saturation); int32 ``(N, H, W)``."""
    base = torch.where((ops == CONTRAST).reshape(-1, 1, 1), means, 0).to(torch.int32)
    return torch.where((ops == SATURATION).reshape(-1, 1, 1), luma(pixels), base)


def hue(pixels: torch.Tensor, shifts: torch.Tensor, tables: Tables) -> torch.Tensor:
    """torchvision's ``adjust_hue`` on PIL: PIL's 8-bit HSV, hue + ``int(shift * 255)`` mod 256
    (``tables``: ``hsv.device_tables`` of the pixels' device)."""
    hue_channel, saturation, value = rgb_to_hsv(*split(pixels), tables)
    offsets = (shifts.to(torch.float64) * 255).to(torch.int64).reshape(-1, 1, 1)  # C's truncation
    shifted = (hue_channel.to(torch.int64) + offsets) % 256
    return join(*hsv_to_rgb(shifted, saturation, value, tables))


def posterize(pixels: torch.Tensor, bits: torch.Tensor) -> torch.Tensor:
    """``ImageOps.posterize``: keeps the top ``bits`` (4 to 8) bits of every channel."""
    masks = (255 << (8 - bits.to(torch.int32))) & 255
    return pixels & per_crop(masks * 0x010101, torch.int32)


def solarize(pixels: torch.Tensor, thresholds: torch.Tensor) -> torch.Tensor:
    """``ImageOps.solarize``: inverts every value ``>= threshold`` (0 to 256)."""
    thresholds = per_crop(thresholds, torch.int32)
    return join(*(torch.where(channel >= thresholds, 255 - channel, channel)
                  for channel in split(pixels)))


def smooth(channel: torch.Tensor) -> torch.Tensor:
    """PIL's 3 x 3 ``SMOOTH`` filter of one int32 channel ``(N, H, W)``, rounded, the border
    pixels kept: summed and rounded in integers (no convolution, so no TF32 on a GPU); PIL's
    ``floor(total / 13 + 0.5)`` is ``(2 total + 13) // 26``, total / 13 being never within a
    float's error of a half."""
    height, width = channel.shape[-2:]
    total = 4 * channel[:, 1:-1, 1:-1]  # the centre's weight 5 = 4 + its own 1 below
    for dy in range(3):
        for dx in range(3):
            total = total + channel[:, dy:dy + height - 2, dx:dx + width - 2]
    smoothed = channel.clone()
    smoothed[:, 1:-1, 1:-1] = torch.div(2 * total + 13, 26, rounding_mode="floor")
    return smoothed


def sharpness(pixels: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    """``ImageEnhance.Sharpness``: blends each channel's ``smooth`` version with it; 0 = smooth,
    1 = unchanged."""
    factors = per_crop(factors, torch.float32)
    return join(*(blend_channel(channel, smooth(channel), factors) for channel in split(pixels)))


def stretch(channel: torch.Tensor) -> torch.Tensor:
    """``ImageOps.autocontrast`` (no cutoff) of one int32 channel ``(N, H, W)``: each crop's
    values stretched to 0-255 through PIL's 256-entry table ``int(level * 255 / (hi - lo) -
    lo * 255 / (hi - lo))`` (float64), one gather."""
    count = len(channel)
    low = channel.amin(dim=(1, 2)).to(torch.float64).unsqueeze(1)
    high = channel.amax(dim=(1, 2)).to(torch.float64).unsqueeze(1)
    level = high <= low  # nothing to stretch: the identity table
    scale = torch.where(level, 1.0, 255.0 / torch.where(level, 1.0, high - low))
    offset = torch.where(level, 0.0, -low * scale)
    levels = torch.arange(256, dtype=torch.float64, device=channel.device)
    tables = (levels * scale + offset).clamp(0, 255).to(torch.int32)  # (N, 256)
    return tables.gather(1, channel.reshape(count, -1).to(torch.int64)).reshape(channel.shape)


def autocontrast(pixels: torch.Tensor) -> torch.Tensor:
    """``ImageOps.autocontrast``: every channel of every crop stretched on its own."""
    return join(*(stretch(channel) for channel in split(pixels)))


def flip(pixels: torch.Tensor) -> torch.Tensor:
    """``transpose(FLIP_LEFT_RIGHT)`` of every crop."""
    return pixels.flip(-1)


def where_chosen(chosen: torch.Tensor, changed: torch.Tensor,
                 pixels: torch.Tensor) -> torch.Tensor:
    """``changed`` for the crops ``chosen`` ``(N,)``, ``pixels`` for the others."""
    return torch.where(chosen.reshape(-1, 1, 1), changed, pixels)


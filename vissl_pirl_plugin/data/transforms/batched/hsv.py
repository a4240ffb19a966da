"""PIL's 8-bit RGB <-> HSV conversions in torch, bit-exact, for the hue jitter on the training device.

Paper Appendix A: the colour jitter includes "hue", which the authors' config computes in PIL's
8-bit ``HSV`` mode (torchvision's ``adjust_hue`` on PIL images). ``per_image/hsv.py`` reproduces both
conversions on every one of the 2**24 colours with PIL-made lookup tables and OpenCV; this module
runs the same tables and the same per-pixel logic as torch operations on a batch's channels, on
any device (``+config/pretrain/pirl/augmentation=on_device``). The tables move to a
device once (``device_tables``; a copy every step would wait for the device) and are passed in,
so that ``torch.compile`` can trace the conversions.
"""
from functools import lru_cache
from typing import Tuple

import torch

from vissl_pirl_plugin.data.transforms.common.hsv_tables import (
    NOT_LOW_SECTORS,
    SHIFTED_SECTOR,
    VALUE_SECTORS,
    backward_tables,
    forward_tables,
)

Tables = Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]
Channels = Tuple[torch.Tensor, torch.Tensor, torch.Tensor]


@lru_cache(maxsize=None)
def device_tables(device: torch.device) -> Tables:
    """``common/hsv_tables``'s four tables and the sector table as tensors on ``device``."""
    hue, saturation = forward_tables()
    factor, low = backward_tables()
    return tuple(torch.from_numpy(table).to(device) for table in
                 (hue, saturation, factor, low, SHIFTED_SECTOR))


def _in_range(values: torch.Tensor, first: int, last: int) -> torch.Tensor:
    return (values >= first) & (values <= last)


def rgb_to_hsv(red: torch.Tensor, green: torch.Tensor, blue: torch.Tensor,
               tables: Tables) -> Channels:
    """PIL's ``convert("HSV")`` of integer R, G, B channels (values 0-255, any shape): H, S
    (uint8) and V (int64), each of that shape."""
    hue_table, saturation_table, *_ = tables
    red, green, blue = (channel.to(torch.int64) for channel in (red, green, blue))
    top = torch.maximum(torch.maximum(red, green), blue)
    low = torch.minimum(torch.minimum(red, green), blue)
    spread = top - low
    mid = red + green + blue - top - low
    code = (red >= green) * 4 + (green >= blue) * 2 + (red >= blue) * 1
    hue = hue_table[(code << 16) | (spread << 8) | (mid - low)]
    saturation = saturation_table[(top << 8) | spread]
    return hue, saturation, top


def hsv_to_rgb(hue: torch.Tensor, saturation: torch.Tensor, value: torch.Tensor,
               tables: Tables) -> Channels:
    """PIL's ``convert("RGB")`` of integer H, S, V channels (values 0-255): int64 R, G, B
    (``per_image/hsv.hsv_to_rgb``'s channel formula: ``max(p, min(min(v, max(q_or_t, A)), B))``)."""
    _, _, factor_table, low_table, sector_table = tables
    hue, saturation, value = (channel.to(torch.int64) for channel in (hue, saturation, value))
    varying = (factor_table[(saturation << 8) | hue] * value + 0.5).to(torch.int64)
    low = low_table[(saturation << 8) | value].to(torch.int64)
    sectors = sector_table[hue]
    channels = []
    for (first, last), (low_first, low_last, invert) in zip(VALUE_SECTORS, NOT_LOW_SECTORS):
        high = torch.minimum(value, torch.where(_in_range(sectors, first, last), 255, varying))
        not_low = _in_range(sectors, low_first, low_last) != invert
        channels.append(torch.maximum(low, torch.where(not_low, high, 0)))
    return tuple(channels)

"""Constant tensors of the device-side augmentation, copied to each device once.

A copy from host memory to a GPU written as ``tensor.to(device)`` waits for the device to finish
its queued work (PyTorch synchronises the stream after copying from pageable memory): done every
step, it would stall the training step exactly as a host read does. The tables, weights and
bounds the batched augmentation uses (the modules of ``batched/``) are made
once on the host and copied here once per device.
"""
from typing import Dict, Tuple

import torch

_COPIES: Dict[Tuple[int, torch.device], Tuple[torch.Tensor, torch.Tensor]] = {}


def on_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``tensor`` on ``device``, copied at the first call only. ``tensor`` must never be modified
    (it is kept, so that its identity stays its own)."""
    if tensor.device == device:
        return tensor
    key = (id(tensor), torch.device(device))
    if key not in _COPIES:
        _COPIES[key] = (tensor, tensor.to(device))
    return _COPIES[key][1]

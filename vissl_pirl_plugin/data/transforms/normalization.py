"""Normalisation of PIRL's uint8 views into the float tensors the trunk takes."""
from typing import Sequence

import torch
from torchvision.transforms import v2


def to_normalized_float(mean: Sequence[float], std: Sequence[float]) -> v2.Transform:
    return v2.Compose([v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(mean), list(std))])

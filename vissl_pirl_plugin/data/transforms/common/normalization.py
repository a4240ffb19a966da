"""Normalisation of PIRL's uint8 views into the float tensors the trunk takes."""
from typing import Dict, Sequence, Tuple

import torch


class NormalizedFloat:
    """uint8 ``(..., 3, H, W)`` -> float32 ``(x / 255 - mean) / std`` per channel, channels-last.

    The pixels are taken as rows of ``W * 3`` interleaved values, so that the per-channel shift
    and scale (tiled to a row, once per width) run along contiguous memory: broadcasting a
    ``(3, 1, 1)`` vector over channels-last memory is several times slower.
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
            raise ValueError(f"mean {list(mean)} and std {list(std)} must be 3 values per "
                             "channel, std > 0.")
        self.shift = torch.tensor([255.0 * m for m in mean])
        self.scale = torch.tensor([1.0 / (255.0 * s) for s in std])
        self.rows: Dict[int, Tuple[torch.Tensor, torch.Tensor]] = {}

    def __call__(self, pixels: torch.Tensor) -> torch.Tensor:
        interleaved = pixels.movedim(-3, -1).contiguous()  # a view for channels-last pixels
        width = interleaved.shape[-2]
        if width not in self.rows:
            self.rows[width] = (self.shift.repeat(width), self.scale.repeat(width))
        shift, scale = self.rows[width]
        rows = interleaved.reshape(-1, width * 3).to(torch.float32, copy=True)  # never the input
        rows.sub_(shift).mul_(scale)
        return rows.reshape(interleaved.shape).movedim(-1, -3)

"""The random resized crop of PIRL's views (paper Appendix A.1), batched in torch on the training
device.

``resized_crop.py`` crops one image at a time in the loader workers. Here a whole batch of images
of different sizes, zero-padded into one uint8 ``(N, 3, H, W)`` canvas with their true
``(N, 2)`` sizes, is cropped at once (``+config/pretrain/pirl/augmentation=on_device``):

* ``random_regions``: torchvision's ``RandomResizedCrop`` draw (area uniform in ``scale`` of the
  image, log-uniform aspect ratio in ``ratio``, the first of 10 tries that fits, else the central
  crop of the closest aspect ratio), all tries of all images drawn at once (``region_draws``),
  then computed from those values (``regions_of``, a pure function).
* ``resize_regions``: PIL's ``BILINEAR`` resize of each region (``crop(box).resize``, what
  VISSL's transforms do to PIL images), written as two matrices per image: PIL's own resampling
  coefficients (``Resample.c``: a triangle filter widened by the scale factor when shrinking, so
  antialiased, taps clipped to the region and normalised), applied horizontally, rounded to
  uint8 as PIL's intermediate image is, then vertically and rounded. A region enlarged or shrunk
  comes out within a fraction of a grey level of PIL's resize (PIL's 22-bit fixed-point
  coefficients are the only difference); two batched matrix products replace PIL's loops.

Neither reads a value back to the host: the regions stay tensors on the device.
"""
import contextlib
import math
from typing import Iterator, List, Sequence, Tuple

import torch

TRIES = 10


def random_regions(sizes: torch.Tensor, scale: Sequence[float], ratio: Sequence[float],
                   generator: torch.Generator) -> torch.Tensor:
    """``(N, 4)`` int64 ``(top, left, height, width)`` regions of images of ``sizes`` ``(N, 2)``
    ``(height, width)``: torchvision's ``RandomResizedCrop.get_params`` for each image."""
    return regions_of(sizes, region_draws(len(sizes), generator, sizes.device), scale, ratio)


def region_draws(count: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """The random values of ``count`` regions: ``(N, TRIES, 4)`` float64, per try the area, the
    aspect ratio, the top and the left."""
    return torch.rand(count, TRIES, 4, generator=generator, dtype=torch.float64, device=device)


def regions_of(sizes: torch.Tensor, draws: torch.Tensor, scale: Sequence[float],
               ratio: Sequence[float]) -> torch.Tensor:
    """``random_regions`` with its values ``draws`` (``region_draws``) given: a pure function."""
    height, width = sizes.to(torch.float64).unbind(1)
    area_draw, ratio_draw, top_draw, left_draw = draws.unbind(2)
    log_low, log_high = math.log(ratio[0]), math.log(ratio[1])
    target_area = (height * width)[:, None] * (scale[0] + (scale[1] - scale[0]) * area_draw)
    aspect = torch.exp(log_low + (log_high - log_low) * ratio_draw)
    tried_width = torch.round(torch.sqrt(target_area * aspect))  # half to even, as Python's round
    tried_height = torch.round(torch.sqrt(target_area / aspect))
    fits = ((tried_width > 0) & (tried_width <= width[:, None]) & (tried_height > 0)
            & (tried_height <= height[:, None]))
    first = fits.to(torch.uint8).argmax(dim=1, keepdim=True)  # the first try that fits

    def chosen(values: torch.Tensor) -> torch.Tensor:
        return values.gather(1, first)[:, 0]

    region_height, region_width = chosen(tried_height), chosen(tried_width)
    top = torch.floor(chosen(top_draw) * (height - region_height + 1))
    left = torch.floor(chosen(left_draw) * (width - region_width + 1))
    # the fallback: the central crop of the closest aspect ratio
    in_ratio = width / height
    low_ratio, high_ratio = min(ratio), max(ratio)
    central_height = torch.where(in_ratio < low_ratio, torch.round(width / low_ratio), height)
    central_width = torch.where(in_ratio > high_ratio, torch.round(height * high_ratio), width)
    central = torch.stack([torch.div(height - central_height, 2, rounding_mode="floor"),
                           torch.div(width - central_width, 2, rounding_mode="floor"),
                           central_height, central_width], dim=1)
    drawn = torch.stack([top, left, region_height, region_width], dim=1)
    return torch.where(fits.any(dim=1, keepdim=True), drawn, central).to(torch.int64)


def resampling_weights(starts: torch.Tensor, lengths: torch.Tensor, in_size: int,
                       out_sizes: Sequence[int]) -> torch.Tensor:
    """``(S, N, max(out_sizes), in_size)`` float32 matrices of PIL's bilinear coefficients: for
    each set ``s`` of ``S``, resizing the ``lengths`` ``(S, N)`` pixels from ``starts`` of each
    image along one axis to ``out_sizes[s]`` pixels (the rows past that: unused). All sets in
    one computation: a few kernels however many sets there are."""
    lengths = lengths.to(torch.float64)[:, :, None, None]
    sets = torch.arange(len(out_sizes), device=starts.device)
    # each set's output size, made on the device from the set's index (no copy from the host)
    out_size = sum((sets == index) * size for index, size in enumerate(out_sizes))
    scale = lengths / out_size.reshape(-1, 1, 1, 1)
    support = torch.clamp(scale, min=1.0)  # the triangle's half-width, widened when shrinking
    out_index = torch.arange(max(out_sizes), dtype=torch.float64,
                             device=starts.device).reshape(1, 1, -1, 1)
    center = (out_index + 0.5) * scale  # in the region's coordinates
    first = torch.clamp(torch.floor(center - support + 0.5), min=0.0)
    end = torch.minimum(torch.floor(center + support + 0.5), lengths)
    position = (torch.arange(in_size, dtype=torch.float64, device=starts.device)
                - starts.to(torch.float64)[:, :, None, None])
    weights = torch.clamp(1.0 - torch.abs((position - center + 0.5) / support), min=0.0)
    weights = torch.where((position >= first) & (position < end), weights, 0.0)
    return (weights / weights.sum(dim=3, keepdim=True)).to(torch.float32)


@contextlib.contextmanager
def full_precision(device: torch.device) -> Iterator[None]:
    """float32 matrix products as float32: no autocast, no TF32 (10-bit mantissas would move
    pixel values by up to a grey level), whatever the caller has set."""
    precision = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    try:
        with torch.autocast(device.type, enabled=False):
            yield
    finally:
        torch.set_float32_matmul_precision(precision)


def resize_regions(canvas: torch.Tensor, regions: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 ``(N, 3, size, size)``: the ``regions`` ``(N, 4)`` of the uint8 ``(N, 3, H, W)``
    canvas, each resized by PIL's bilinear resize."""
    with full_precision(canvas.device):
        return resized_in_full_precision(canvas, [(regions, size)])[0]


def resized_in_full_precision(canvas: torch.Tensor,
                              views: Sequence[Tuple[torch.Tensor, int]]) -> List[torch.Tensor]:
    """``resize_regions`` of several ``(regions, size)`` of the same canvas, their matrices made
    together, inside the caller's ``full_precision`` (which ``torch.compile`` cannot trace: a
    compiled caller enters it outside its compiled region)."""
    height, width = canvas.shape[-2:]
    top, left, region_height, region_width = (torch.stack(side) for side in zip(
        *(regions.unbind(1) for regions, _ in views)))
    sizes = [size for _, size in views]
    # rows then columns of every view, as one set of matrices over the canvas's longer side
    weights = resampling_weights(torch.cat([top, left]), torch.cat([region_height, region_width]),
                                 max(height, width), sizes + sizes)
    pixels = canvas.to(torch.float32)
    resized = []
    for index, size in enumerate(sizes):
        rows = weights[index, :, :size, :height]
        columns = weights[len(views) + index, :, :size, :width]
        horizontal = torch.einsum("nchw,nsw->nchs", pixels, columns)
        horizontal = torch.floor(horizontal + 0.5).clamp_(0, 255)  # PIL's uint8 intermediate
        vertical = torch.einsum("nrh,nchs->ncrs", rows, horizontal)
        resized.append(torch.floor(vertical + 0.5).clamp_(0, 255).to(torch.uint8))
    return resized

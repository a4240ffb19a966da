"""Collator ``pirl_collator`` for PIRL's pair of inputs.

Each sample's data is ``[image (3, H, W), transformed]`` where ``transformed`` is
either ``(P, 3, h, w)`` patches (jigsaw) or one ``(3, H, W)`` image (rotation),
or just ``[image]`` (NPID++). The batch gets ``images`` ``(B, 3, H, W)`` and the
transformed key ``(B * P, 3, h, w)``, sample-major, as the PIRL heads expect.

VISSL marks an image that failed to load with ``data_valid = -1`` and feeds a
placeholder; its label becomes ``ignore_index`` so that the placeholder never
enters the loss's positive pairs or the memory bank. (VISSL's own
``patch_and_image_collator`` turns -1 into ``True`` with ``torch.BoolTensor``.)
``data_idx`` keeps every sample's dataset index, so that ``UnreadableImageHook``
can name the files that failed.

With ``on_device`` (``ImgPilToPirlPair``) each sample's data is the image's uint8 ``(3, H, W)``
pixels instead: the batch gets them zero-padded into one uint8 ``pixels`` canvas
``(B, H_max, W_max, 3)`` with their ``pixel_sizes`` ``(B, 2)``, from which
``pirl_device_augmentation_train_step`` makes the two inputs on the training device (a
canvas and sizes, not a list of tensors, so that the device never waits for the host to
read a size). With ``canvas_side`` (set by the launcher to the first transform's
``max_image_side`` for ``augmentation=on_device``) the canvas is always
``(B, canvas_side, canvas_side, 3)``: every step's tensors then have one shape, which
``torch.compile`` and CUDA graphs need (one compilation, one captured graph); an image larger
than that is refused.

Both inputs leave in one memory format, channels-last (``torch.channels_last``, NHWC strides):
the format cuDNN's convolutions are fastest in, and the one the transforms' uint8 pixels already
have. With mixed formats the trunk would convert its weights on every call.
"""
from typing import Any, Dict, List, Optional

import torch
from vissl.data.collators import register_collator


@register_collator("pirl_collator")
def pirl_collator(batch: List[Dict[str, Any]], transformed_key: str = "patches",
                  image_key: str = "images", ignore_index: int = -1,
                  canvas_side: Optional[int] = None) -> Dict[str, List[torch.Tensor]]:
    views = [sample["data"][0] for sample in batch]
    if all(_is_pixels(view) for view in views):
        output = pixel_canvas(views, canvas_side)
    else:
        output = _views(views, transformed_key, image_key)
    labels = torch.tensor([int(sample["label"][0]) for sample in batch], dtype=torch.long)
    valid = torch.tensor([sample["data_valid"][0] == 1 for sample in batch], dtype=torch.bool)
    data_idx = torch.tensor([int(sample["data_idx"][0]) for sample in batch], dtype=torch.long)
    labels[~valid] = ignore_index
    return {**output, "label": [labels], "data_valid": [valid], "data_idx": [data_idx]}


def pixel_canvas(views: List[torch.Tensor], side: Optional[int] = None
                 ) -> Dict[str, List[torch.Tensor]]:
    """uint8 ``(3, H, W)`` images -> ``pixels`` ``(B, H_max, W_max, 3)`` (``(B, side, side, 3)``
    with ``side``), ``pixel_sizes``."""
    sizes = torch.tensor([list(view.shape[-2:]) for view in views], dtype=torch.long)
    height, width = sizes.max(dim=0).values.tolist()
    if side is not None:
        if max(height, width) > side:
            raise ValueError(
                f"pirl_collator: an image of {height} x {width} pixels does not fit the canvas of "
                f"canvas_side={side}. Set DATA.TRAIN.COLLATE_FUNCTION_PARAMS.canvas_side to at "
                "least the first transform's max_image_side (the plugin's launcher does).")
        height = width = side
    canvas = torch.zeros(len(views), height, width, 3, dtype=torch.uint8)
    for slot, view in zip(canvas, views):
        slot[:view.shape[-2], :view.shape[-1]] = view.permute(1, 2, 0)
    return {"pixels": [canvas], "pixel_sizes": [sizes]}


def _is_pixels(view: Any) -> bool:
    return isinstance(view, torch.Tensor) and view.dtype == torch.uint8 and view.dim() == 3


def _views(views: List[Any], transformed_key: str, image_key: str) -> Dict[str, List[torch.Tensor]]:
    if any(not isinstance(view, (list, tuple)) or len(view) not in (1, 2) for view in views):
        raise ValueError(
            "pirl_collator expects each sample's data to be [image, transformed] or [image], as "
            "made by ImgPilToPirlPair or ImgPilToPirlJigsaw listed first in DATA.TRAIN.TRANSFORMS "
            "(or, with on_device, each sample's uint8 pixels).")
    output = {image_key: [_channels_last(torch.stack([view[0] for view in views]))]}
    if len(views[0]) == 2:
        transformed = torch.cat([_as_batch(view[1]) for view in views])
        output[transformed_key] = [_channels_last(transformed)]
    return output


def _as_batch(tensor: torch.Tensor) -> torch.Tensor:
    return tensor if tensor.dim() == 4 else tensor.unsqueeze(0)


def _channels_last(batch: torch.Tensor) -> torch.Tensor:
    return batch.contiguous(memory_format=torch.channels_last)

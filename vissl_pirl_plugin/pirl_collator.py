"""Collator ``pirl_collator`` for PIRL's pair of inputs.

Each sample's data is ``[image (3, H, W), transformed]`` where ``transformed`` is
either ``(P, 3, h, w)`` patches (jigsaw) or one ``(3, H, W)`` image (rotation).
The batch gets ``images`` ``(B, 3, H, W)`` and the transformed key ``(B * P, 3, h, w)``,
sample-major, as the PIRL heads expect.

VISSL marks an image that failed to load with ``data_valid = -1`` and feeds a
placeholder; its label becomes ``ignore_index`` so that the placeholder never
enters the loss's positive pairs or the memory bank. (VISSL's own
``patch_and_image_collator`` turns -1 into ``True`` with ``torch.BoolTensor``.)
"""
from typing import Any, Dict, List

import torch
from vissl.data.collators import register_collator


@register_collator("pirl_collator")
def pirl_collator(batch: List[Dict[str, Any]], transformed_key: str = "patches",
                  image_key: str = "images", ignore_index: int = -1) -> Dict[str, List[torch.Tensor]]:
    for sample in batch:
        data = sample["data"][0]
        if not isinstance(data, (list, tuple)) or len(data) != 2:
            raise ValueError(
                "pirl_collator expects each sample's data to be [image, transformed], as made by "
                "a PIRL transform (e.g. ImgPilToPirlJigsaw) listed first in DATA.TRAIN.TRANSFORMS.")
    images = torch.stack([sample["data"][0][0] for sample in batch])
    transformed = torch.cat([_as_batch(sample["data"][0][1]) for sample in batch])
    labels = torch.tensor([int(sample["label"][0]) for sample in batch], dtype=torch.long)
    valid = torch.tensor([sample["data_valid"][0] == 1 for sample in batch], dtype=torch.bool)
    labels[~valid] = ignore_index
    return {image_key: [images], transformed_key: [transformed], "label": [labels],
            "data_valid": [valid]}


def _as_batch(tensor: torch.Tensor) -> torch.Tensor:
    return tensor if tensor.dim() == 4 else tensor.unsqueeze(0)

"""The PIRL-Jigsaw head ``g``, registered in VISSL as ``pirl_jigsaw_head`` (paper §2.3, App. A.1).

"The 9 patches of I^t are individually input to the network to get their res5
features which are average pooled to get a single 2048 dimensional vector for
each patch. We then apply a linear projection to these features to get a 128
dimensional vector for each patch. These patch features are concatenated to get
a 1152 dimensional vector which is then input to another single linear layer to
get the final 128 dimensional feature." No BatchNorm and no ReLU.

The ``f`` head on untransformed images is VISSL's ``mlp`` with ``dims: [2048, 128]``.

``hidden_dim`` (an option, off by default) makes the per-patch projection a
two-layer MLP with a ReLU (``in_dim -> hidden_dim -> patch_dim``), as in VISSL's
model-zoo "MLP head" PIRL.
"""
from typing import Optional

import torch
from torch import nn
from vissl.models.heads import register_model_head


@register_model_head("pirl_jigsaw_head")
class PIRLJigsawHead(nn.Module):
    """``(B * num_patches, in_dim)`` patch features -> ``(B, out_dim)`` ``g(v_It)``.

    Patches arrive sample-major (``pirl_collator``): rows ``b * num_patches`` to
    ``(b + 1) * num_patches - 1`` belong to image ``b``.
    """

    def __init__(self, model_config, in_dim: int = 2048, patch_dim: int = 128,
                 num_patches: int = 9, out_dim: int = 128,
                 hidden_dim: Optional[int] = None) -> None:
        super().__init__()
        self.in_dim = in_dim
        self.num_patches = num_patches
        self.patch_projection = (nn.Linear(in_dim, patch_dim) if hidden_dim is None else
                                 nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.ReLU(inplace=True),
                                               nn.Linear(hidden_dim, patch_dim)))
        self.image_projection = nn.Linear(num_patches * patch_dim, out_dim)

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        features = batch.flatten(start_dim=1)
        if features.shape[1] != self.in_dim:
            raise ValueError(
                f"pirl_jigsaw_head expects {self.in_dim}-d trunk features, got {features.shape[1]}. "
                "Set in_dim in the head's parameters (MODEL.HEAD.PARAMS) to the trunk's output "
                "dimension.")
        if features.shape[0] % self.num_patches:
            raise ValueError(
                f"pirl_jigsaw_head got {features.shape[0]} patch features, not a multiple of "
                f"num_patches={self.num_patches}. Match num_patches to the transform's grid_size**2.")
        patches = self.patch_projection(features)
        return self.image_projection(patches.reshape(-1, self.num_patches * patches.shape[1]))

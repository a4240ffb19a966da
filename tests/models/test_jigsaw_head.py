"""The PIRL-Jigsaw head g (paper §2.3, App. A.1)."""
import pytest
import torch
from torch import nn
from vissl.models.heads import get_model_head

from vissl_pirl_plugin.models.pirl_jigsaw_head import PIRLJigsawHead


def test_registered_and_shaped_as_in_the_paper():
    head = get_model_head("pirl_jigsaw_head")(None)
    assert isinstance(head, PIRLJigsawHead)
    layers = list(head.modules())[1:]
    assert all(isinstance(layer, nn.Linear) for layer in layers)  # no BN, no ReLU
    assert (head.patch_projection.in_features, head.patch_projection.out_features) == (2048, 128)
    assert (head.image_projection.in_features, head.image_projection.out_features) == (1152, 128)
    assert head(torch.randn(4 * 9, 2048, 1, 1)).shape == (4, 128)


def test_each_output_depends_only_on_its_own_nine_patches():
    head = PIRLJigsawHead(None, in_dim=16, patch_dim=4, out_dim=8)
    features = torch.randn(3 * 9, 16)
    changed = features.clone()
    changed[9:18] += 1.0  # the patches of image 1
    before, after = head(features), head(changed)
    assert torch.equal(before[0], after[0]) and torch.equal(before[2], after[2])
    assert not torch.allclose(before[1], after[1])


def test_wrong_feature_dim_names_the_fix():
    with pytest.raises(ValueError, match="expects 2048-d trunk features, got 512"):
        PIRLJigsawHead(None)(torch.randn(9, 512))
    with pytest.raises(ValueError, match="not a multiple of num_patches=9"):
        PIRLJigsawHead(None, in_dim=8)(torch.randn(10, 8))

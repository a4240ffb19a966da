"""The small ResNet trunk registered for CPU demos (resnet_small)."""
import pytest
import torch
from vissl.models import build_model

from vissl_pirl_plugin.engine.config_validation import validate_config
from vissl_pirl_plugin.engine.launcher import compose_config

GROUP = "+config/pretrain/pirl/trunk=resnet18"


def compose(tmp_path, *overrides):
    return compose_config(["config=pretrain/pirl/pirl_jigsaw_4node_resnet50", GROUP,
                           f"config.CHECKPOINT.DIR={tmp_path}", *overrides])[1]


@pytest.mark.parametrize("depth, width, dim", [(18, 64, 512), (10, 16, 128)])
def test_features_and_pirl_outputs(tmp_path, depth, width, dim):
    cfg = compose(tmp_path, f"config.MODEL.TRUNK.RESNET_SMALL.DEPTH={depth}",
                  f"config.MODEL.TRUNK.RESNET_SMALL.WIDTH={width}",
                  f"config.MODEL.HEAD.PARAMS.0.0.1.in_dim={dim}",
                  f"config.MODEL.HEAD.PARAMS.1.0.1.dims=[{dim},128]")
    validate_config(cfg)
    model = build_model(cfg.MODEL, cfg.OPTIMIZER)
    images = torch.randn(2, 3, 64, 64)
    res4, flat = model.trunk(images, out_feat_keys=["res4", "flatten"])
    assert res4.shape == (2, 4 * width, 4, 4) and flat.shape == (2, dim)
    g, f = model({"patches": torch.randn(18, 3, 64, 64), "images": images})
    assert g.shape == (2, 128) and f.shape == (2, 128)


def test_bad_depth_and_mismatched_head(tmp_path):
    with pytest.raises(ValueError, match="RESNET_SMALL.DEPTH=34"):
        cfg = compose(tmp_path, "config.MODEL.TRUNK.RESNET_SMALL.DEPTH=34")
        build_model(cfg.MODEL, cfg.OPTIMIZER)
    with pytest.raises(ValueError, match=r"takes 2048-d input but the trunk \(resnet_small\) "
                                         r"outputs 512-d"):
        validate_config(compose(tmp_path, "config.MODEL.HEAD.PARAMS.0.0.1.in_dim=2048"))

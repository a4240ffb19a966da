"""Converting a plugin checkpoint's trunk to torchvision and Detectron2 weights (issue #7)."""
import pickle

import pytest
import torch
import torchvision
from vissl.models import build_model

from vissl_pirl_plugin.convert_checkpoint import detectron2_name, main, trunk_state_dict
from vissl_pirl_plugin.launcher import compose_config

# Detectron2's names for torchvision ResNet keys, as its own torchvision converter writes them
DETECTRON2_NAMES = {
    "conv1.weight": "stem.conv1.weight",
    "bn1.weight": "stem.conv1.norm.weight",
    "bn1.running_mean": "stem.conv1.norm.running_mean",
    "layer1.0.conv1.weight": "res2.0.conv1.weight",
    "layer1.0.bn1.bias": "res2.0.conv1.norm.bias",
    "layer1.0.bn2.running_var": "res2.0.conv2.norm.running_var",
    "layer1.0.bn3.weight": "res2.0.conv3.norm.weight",
    "layer1.0.downsample.0.weight": "res2.0.shortcut.weight",
    "layer1.0.downsample.1.weight": "res2.0.shortcut.norm.weight",
    "layer2.3.conv2.weight": "res3.3.conv2.weight",
    "layer3.5.bn3.running_mean": "res4.5.conv3.norm.running_mean",
    "layer4.0.downsample.1.running_var": "res5.0.shortcut.norm.running_var",
    "layer4.2.conv3.weight": "res5.2.conv3.weight",
}


@pytest.fixture(scope="module")
def pirl_checkpoint(tmp_path_factory):
    """A checkpoint laid out as the plugin's pre-training writes it (VISSL's format)."""
    folder = tmp_path_factory.mktemp("ckpt")
    _, cfg = compose_config(["config=pretrain/pirl/pirl_jigsaw_4node_resnet50",
                             f"config.CHECKPOINT.DIR={folder}"])
    torch.manual_seed(0)
    model = build_model(cfg.MODEL, cfg.OPTIMIZER)
    with torch.no_grad():  # non-trivial BN statistics, so eval outputs test them too
        for module in model.trunk.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    path = folder / "model_final_checkpoint_phase0.torch"
    torch.save({"classy_state_dict": {"base_model": model.get_classy_state()},
                "loss": {"memory_bank.embeddings": torch.zeros(4, 128)}}, path)
    return path, model


def test_torchvision_resnet50_loads_the_trunk_and_computes_the_same_features(pirl_checkpoint,
                                                                              tmp_path):
    path, model = pirl_checkpoint
    main([str(path), str(tmp_path / "tv.pth"), "--format", "torchvision"])
    resnet = torchvision.models.resnet50()
    missing, unexpected = resnet.load_state_dict(torch.load(tmp_path / "tv.pth"), strict=False)
    assert sorted(missing) == ["fc.bias", "fc.weight"] and unexpected == []  # heads dropped
    resnet.fc = torch.nn.Identity()
    images = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        expected = model.trunk.eval()(images, out_feat_keys=["flatten"])[0].flatten(1)
        assert torch.allclose(resnet.eval()(images), expected, atol=1e-5)


def test_detectron2_pickle_uses_detectron2_names(pirl_checkpoint, tmp_path):
    path, _ = pirl_checkpoint
    main([str(path), str(tmp_path / "d2.pkl"), "--format", "detectron2"])
    with open(tmp_path / "d2.pkl", "rb") as handle:
        converted = pickle.load(handle)
    assert converted["matching_heuristics"] is True
    weights = trunk_state_dict(path)
    for torchvision_key, detectron2_key in DETECTRON2_NAMES.items():
        assert detectron2_name(torchvision_key) == detectron2_key
        assert (converted["model"][detectron2_key] == weights[torchvision_key].numpy()).all()
    expected = {k for k in torchvision.models.resnet50().state_dict()
                if not k.startswith("fc.") and not k.endswith("num_batches_tracked")}
    assert set(converted["model"]) == {detectron2_name(k) for k in expected}


def test_bad_inputs_name_the_file_and_the_keys(pirl_checkpoint, tmp_path):
    (tmp_path / "notes.txt").write_text("not a checkpoint")
    with pytest.raises(ValueError, match="notes.txt is not a PIRL/VISSL checkpoint"):
        trunk_state_dict(tmp_path / "notes.txt")
    torch.save({"state_dict": {}}, tmp_path / "other.torch")
    with pytest.raises(ValueError, match="other.torch is not a PIRL/VISSL checkpoint: no "):
        trunk_state_dict(tmp_path / "other.torch")
    path, model = pirl_checkpoint
    with pytest.raises(ValueError, match=r"does not match ResNet: missing \['layer3.10"):
        main([str(path), str(tmp_path / "x.pth"), "--depth", "101"])  # a ResNet-50 file
    state = model.get_classy_state()
    state["model"]["trunk"]["_feature_blocks.conv1.weight"] = torch.zeros(32, 3, 7, 7)
    torch.save({"classy_state_dict": {"base_model": state}}, tmp_path / "narrow.torch")
    with pytest.raises(ValueError, match=r"narrow.torch: .*shape mismatches \['conv1.weight'\]"):
        main([str(tmp_path / "narrow.torch"), str(tmp_path / "x.pth")])

"""Converting a plugin checkpoint's trunk to torchvision and Detectron2 weights (issue #7)."""
import pickle

import pytest
import torch
import torchvision
from vissl.models import build_model

from vissl_pirl_plugin.tools.convert_checkpoint import detectron2_name, main, trunk_state_dict
from vissl_pirl_plugin.engine.launcher import compose_config

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


def test_detectron2_pickle_uses_detectron2_names(pirl_checkpoint, tmp_path, capsys):
    path, _ = pirl_checkpoint
    main([str(path), str(tmp_path / "d2.pkl"), "--format", "detectron2"])
    with open(tmp_path / "d2.pkl", "rb") as handle:
        converted = pickle.load(handle)
    # what it wrote: 265 for ResNet-50 (no num_batches_tracked counters), not the trunk's 318
    assert f"detectron2 weights ({len(converted['model'])} tensors)" in capsys.readouterr().out
    assert len(converted["model"]) == 265
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
    with pytest.raises(ValueError, match="notes.txt is not a checkpoint that torch.save wrote"):
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


def test_detectron2_configs_carry_the_papers_hyperparameters():
    import yaml

    from conftest import REPO

    for name, train, step, iterations in (
            ("voc07_12", ["voc_2007_trainval", "voc_2012_trainval"], 17000, 25000),
            ("voc07", ["voc_2007_trainval"], 9500, 12500)):
        cfg = yaml.safe_load((REPO / "configs" / "detectron2" /
                              f"pirl_faster_rcnn_R_50_C4_{name}.yaml").read_text())
        solver = cfg["SOLVER"]
        assert (solver["BASE_LR"], solver["IMS_PER_BATCH"], solver["WARMUP_ITERS"]) == (0.003, 16, 1000)
        assert solver["WARMUP_FACTOR"] == pytest.approx(1 / 3)
        assert (solver["STEPS"], solver["MAX_ITER"]) == ([step], iterations)
        assert cfg["DATASETS"]["TRAIN"] == train
        assert cfg["MODEL"]["RESNETS"]["NORM"] == "FrozenBN"  # BatchNorm kept fixed
        assert cfg["MODEL"]["ROI_HEADS"]["NAME"] == "Res5ROIHeads"  # R50-C4, stock Detectron2


@pytest.mark.slow
def test_detectron2_loads_the_converted_trunk_and_trains_one_iteration(pirl_checkpoint, tmp_path):
    pytest.importorskip("detectron2", reason="Detectron2 is an optional extra (docs/benchmarks.md, "
                        "'Detection with Detectron2'); it is not installed here")
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.config import get_cfg
    from detectron2.modeling import build_model as build_detector
    from detectron2.structures import Boxes, Instances
    from detectron2.utils.events import EventStorage

    from conftest import REPO

    path, _ = pirl_checkpoint
    main([str(path), str(tmp_path / "d2.pkl"), "--format", "detectron2"])
    cfg = get_cfg()
    cfg.merge_from_file(str(REPO / "configs" / "detectron2" / "pirl_faster_rcnn_R_50_C4_voc07.yaml"))
    cfg.MODEL.DEVICE = "cpu"
    model = build_detector(cfg)
    checkpointer = DetectionCheckpointer(model)
    incompatible = checkpointer._load_model(checkpointer._load_file(str(tmp_path / "d2.pkl")))
    missing = {key.split(".")[0] + "." + key.split(".")[1] for key in incompatible.missing_keys}
    assert missing <= {"proposal_generator.rpn_head", "roi_heads.box_predictor"}, missing
    image = torch.rand(3, 128, 160) * 255
    instances = Instances((128, 160), gt_boxes=Boxes(torch.tensor([[10.0, 20.0, 90.0, 110.0]])),
                          gt_classes=torch.tensor([3]))
    model.train()
    with EventStorage():  # Detectron2's training forward logs to the current event storage
        losses = model([{"image": image, "instances": instances, "height": 128, "width": 160}])
    sum(losses.values()).backward()
    assert all(torch.isfinite(value) for value in losses.values())

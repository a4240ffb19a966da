"""The VOC07 SVM benchmark end to end on the CPU, from a checkpoint the plugin's pre-training
wrote, and the benchmark configs' paper hyperparameters (issue #7)."""
import colorsys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vissl_pirl_plugin.engine.launcher import compose_config
from vissl_pirl_plugin.tools.voc07_svm import VOC_CLASSES, main as voc07_svm, voc_filelists

from conftest import write_image_folder
from test_training_e2e import LAUNCHER, paper_config_on_cpu, run


def write_tiny_voc(root: Path, per_class: int = 3) -> Path:
    """A VOC devkit layout: each image shows one class as a colour, plus a difficult flag."""
    (root / "JPEGImages").mkdir(parents=True)
    (root / "ImageSets" / "Main").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for split in ("trainval", "test"):
        ids = [f"{split}_{i:04d}" for i in range(per_class * len(VOC_CLASSES))]
        for number, image_id in enumerate(ids):
            rgb = np.array(colorsys.hsv_to_rgb((number % 20) / 20, 0.9, 0.9)) * 255
            pixels = np.clip(rgb + rng.normal(0, 25, (48, 64, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / "JPEGImages" / f"{image_id}.jpg")
        for class_index, name in enumerate(VOC_CLASSES):
            lines = [f"{image_id} {1 if n % 20 == class_index else -1}"
                     for n, image_id in enumerate(ids)]
            lines[(class_index + 1) % len(ids)] = f"{ids[(class_index + 1) % len(ids)]} 0"
            (root / "ImageSets" / "Main" / f"{name}_{split}.txt").write_text("\n".join(lines))
    return root


def test_voc_filelists_use_vissl_label_convention(tmp_path):
    root = write_tiny_voc(tmp_path / "VOC2007", per_class=1)
    images, labels = voc_filelists(root, "trainval", tmp_path / "lists")
    paths, targets = np.load(images), np.load(labels)
    assert len(paths) == 20 and targets.shape == (20, 20)
    assert targets[0, 0] == 1 and targets[0, 2] == 0 and targets[2, 1] == -1  # pos, neg, difficult
    with pytest.raises(FileNotFoundError, match="must be a VOC devkit folder"):
        voc_filelists(tmp_path, "trainval", tmp_path / "lists")


@pytest.mark.slow
def test_voc07_svm_flow_from_a_pirl_checkpoint(tmp_path):
    images = write_image_folder(tmp_path / "images", num_images=4)
    run([LAUNCHER, *paper_config_on_cpu(images, tmp_path / "pretrain")], cwd=tmp_path)
    voc = write_tiny_voc(tmp_path / "VOC2007")
    results = voc07_svm([
        "--voc-root", str(voc),
        f"config.MODEL.WEIGHTS_INIT.PARAMS_FILE={tmp_path / 'pretrain' / 'checkpoint.torch'}",
        f"config.CHECKPOINT.DIR={tmp_path / 'svm'}",
        "config.SVM.costs.costs_list=[0.1,1.0]", "config.SVM.cross_val_folds=2"])
    assert list(results) == ["res5"]
    assert 0.0 < results["res5"] <= 100.0  # a mAP was produced
    assert (tmp_path / "svm" / "rank0_train_res5_features.npy").is_file()


def test_benchmark_configs_carry_the_papers_hyperparameters(tmp_path):
    def compose(name):
        return compose_config([f"config=benchmark/{name}", f"config.CHECKPOINT.DIR={tmp_path}"])[1]

    svm = compose("linear_image_classification/voc07/eval_resnet_pirl_voc07_svm")
    assert [m[0] for m in svm.MODEL.FEATURE_EVAL_SETTINGS.LINEAR_EVAL_FEAT_POOL_OPS_MAP] == ["res5"]
    assert svm.MODEL.WEIGHTS_INIT.STATE_DICT_KEY_NAME == "classy_state_dict"
    stages = compose("linear_image_classification/voc07/eval_resnet_pirl_voc07_svm_all_stages")
    assert [m[0] for m in stages.MODEL.FEATURE_EVAL_SETTINGS.LINEAR_EVAL_FEAT_POOL_OPS_MAP] == [
        "conv1", "res2", "res3", "res4", "res5"]
    linear = compose("linear_image_classification/imagenet1k/eval_resnet_pirl_in1k_linear")
    opt = linear.OPTIMIZER
    assert (opt.momentum, opt.weight_decay, opt.num_epochs) == (0.9, 0.0005, 28)
    assert opt.param_schedulers.lr["values"] == [0.01, 0.001, 0.0001]  # 0.01, x0.1 twice
    for percent in ("01", "10"):
        semi = compose(f"semi_supervised/imagenet1k/eval_resnet_pirl_in1k_semi_sup_per{percent}")
        assert semi.MODEL.WEIGHTS_INIT.STATE_DICT_KEY_NAME == "classy_state_dict"

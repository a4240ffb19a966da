"""VOC07 linear-SVM benchmark on the CPU (paper §3.2, Table 2): extraction + VISSL's SVM trainer.

VISSL's ``tools/train_svm.py`` extracts features with its GPU-only trainer
(``trainer_main.py`` asserts CUDA). This module does the same extraction on the
CPU and writes exactly what VISSL's SVM code reads (``rank0_{train,test}_{layer}_
{features,targets,inds}.npy`` in ``CHECKPOINT.DIR``), then trains and tests VISSL's
``SVMTrainer`` per layer and prints the mAP. Features and weights come from the same
config as the GPU flow (``benchmark/linear_image_classification/voc07/eval_resnet_pirl_voc07_svm``).

    python -m vissl_pirl_plugin.tools.voc07_svm --voc-root /data/VOC2007 \\
        config.MODEL.WEIGHTS_INIT.PARAMS_FILE=checkpoints/<run>/checkpoint.torch \\
        config.CHECKPOINT.DIR=./voc07_svm

``--voc-root`` is a VOC devkit folder (``JPEGImages/``, ``ImageSets/Main/{class}_{split}.txt``);
the ``trainval`` and ``test`` file lists are written in VISSL's format (labels 1 positive,
0 negative, -1 difficult) and used as ``DATA_PATHS`` / ``LABEL_PATHS``.
"""
import argparse
import os
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np
import torch
from vissl.data import build_dataset
from vissl.models import build_model
from vissl.utils.checkpoint import init_model_from_consolidated_weights, load_checkpoint
from vissl.utils.misc import merge_features
from vissl.utils.svm_utils.svm_trainer import SVMTrainer

from vissl_pirl_plugin.engine.launcher import compose_config
from vissl_pirl_plugin.tools.command_line import run_tool
from vissl_pirl_plugin.utils.user_errors import InvalidInputError, MissingInputError

VOC_CLASSES = ("aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
               "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
               "sheep", "sofa", "train", "tvmonitor")
SVM_CONFIG = "config=benchmark/linear_image_classification/voc07/eval_resnet_pirl_voc07_svm"
SPLITS = {"TRAIN": ("train", "trainval"), "TEST": ("test", "test")}


def voc_filelists(voc_root: Path, image_set: str, out_dir: Path) -> Tuple[Path, Path]:
    """VISSL's ``disk_filelist`` files for a VOC image set: image paths and (N, 20) labels."""
    main = voc_root / "ImageSets" / "Main"
    labels: Dict[str, List[int]] = {}
    for class_index, name in enumerate(VOC_CLASSES):
        path = main / f"{name}_{image_set}.txt"
        if not path.is_file():
            raise MissingInputError(f"{path} is missing: --voc-root must be a VOC devkit folder "
                                    "with ImageSets/Main/<class>_<split>.txt for all 20 classes.")
        for line in path.read_text().split("\n"):
            if line.strip():
                image_id, value = line.split()
                # VOC: 1 positive, -1 negative, 0 difficult -> VISSL: 1, 0, -1
                labels.setdefault(image_id, [0] * len(VOC_CLASSES))[class_index] = {
                    "1": 1, "-1": 0, "0": -1}[value]
    ids = sorted(labels)
    out_dir.mkdir(parents=True, exist_ok=True)
    images, targets = out_dir / f"{image_set}_images.npy", out_dir / f"{image_set}_labels.npy"
    np.save(images, np.array([str(voc_root / "JPEGImages" / f"{i}.jpg") for i in ids]))
    np.save(targets, np.array([labels[i] for i in ids], dtype=np.int64))
    return images, targets


def feature_model(cfg) -> torch.nn.Module:
    """The trunk with VISSL's eval-time pooling, with the checkpoint's weights."""
    model = build_model(cfg.MODEL, cfg.OPTIMIZER)
    weights_init = cfg.MODEL.WEIGHTS_INIT
    if not weights_init.PARAMS_FILE:
        raise InvalidInputError("config.MODEL.WEIGHTS_INIT.PARAMS_FILE is empty: point it at a checkpoint "
                         "written by the plugin's pre-training (e.g. checkpoints/<run>/checkpoint.torch).")
    weights = load_checkpoint(weights_init.PARAMS_FILE, device=torch.device("cpu"))
    init_model_from_consolidated_weights(
        cfg, model, weights, state_dict_key_name=weights_init.STATE_DICT_KEY_NAME,
        skip_layers=weights_init.SKIP_LAYERS, replace_prefix=weights_init.REMOVE_PREFIX,
        append_prefix=weights_init.APPEND_PREFIX)
    return model.eval()


@torch.no_grad()
def extract(cfg, model: torch.nn.Module, split: str, batch_size: int = 16) -> List[str]:
    """Writes ``rank0_{split}_{layer}_{features,targets,inds}.npy``; returns the layer names."""
    dataset = build_dataset(cfg, split)
    layers = [name for name, _ in cfg.MODEL.FEATURE_EVAL_SETTINGS.LINEAR_EVAL_FEAT_POOL_OPS_MAP]
    features: Dict[str, list] = {layer: [] for layer in layers}
    targets, indices = [], []
    for start in range(0, len(dataset), batch_size):
        items = [dataset[i] for i in range(start, min(start + batch_size, len(dataset)))]
        outputs = model(torch.stack([item["data"][0] for item in items]))
        for layer, output in zip(layers, outputs):
            features[layer].append(output.flatten(1).numpy())
        targets.extend(np.asarray(item["label"][0]) for item in items)
        indices.extend(item["data_idx"][0] for item in items)
    name = SPLITS[split][0]
    for layer in layers:
        prefix = os.path.join(cfg.CHECKPOINT.DIR, f"rank0_{name}_{layer}")
        np.save(f"{prefix}_features.npy", np.concatenate(features[layer]))
        np.save(f"{prefix}_targets.npy", np.stack(targets))
        np.save(f"{prefix}_inds.npy", np.array(indices))
    return layers


def train_and_test_svms(cfg, layer: str) -> float:
    """VISSL's SVMTrainer on the extracted features of ``layer``; returns the test mAP (%)."""
    output_dir = cfg.CHECKPOINT.DIR
    trainer = SVMTrainer(cfg.SVM, layer=layer, output_dir=output_dir)
    train = merge_features(output_dir, "train", layer)
    trainer.train(train["features"], train["targets"])
    test = merge_features(output_dir, "test", layer)
    trainer.test(test["features"], test["targets"])
    return float(100.0 * np.mean(np.load(os.path.join(output_dir, layer, "test_ap.npy"))))


def main(argv: List[str]) -> Dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--voc-root", type=Path, required=True)
    args, overrides = parser.parse_known_args(argv)
    _, cfg = compose_config([SVM_CONFIG, "config.MACHINE.DEVICE=cpu", *overrides])
    cfg.CHECKPOINT.DIR = os.path.abspath(cfg.CHECKPOINT.DIR)
    for split, (_, image_set) in SPLITS.items():
        images, labels = voc_filelists(args.voc_root, image_set, Path(cfg.CHECKPOINT.DIR) / "filelists")
        data = cfg.DATA[split]
        data.DATA_SOURCES, data.LABEL_SOURCES = ["disk_filelist"], ["disk_filelist"]
        data.DATA_PATHS, data.LABEL_PATHS = [str(images)], [str(labels)]
        data.COPY_TO_LOCAL_DISK = False
    model = feature_model(cfg)
    layers = [extract(cfg, model, split) for split in SPLITS][0]
    results = {layer: train_and_test_svms(cfg, layer) for layer in layers}
    for layer, mean_ap in results.items():
        print(f"VOC07 SVM mAP ({layer}): {mean_ap:.2f}")
    return results


def cli() -> None:
    """The console script ``vissl-pirl-voc07-svm``: a user's mistake is one line on stderr, exit status 1."""
    run_tool(main)


if __name__ == "__main__":
    cli()

"""Linear probe of frozen trunk features on a labelled folder of images (paper §3.2, App. C).

Loads a VISSL checkpoint written by the plugin's pre-training into the config's
trunk, extracts average-pooled res5 features (``flatten``) of centre crops, and
trains a multinomial logistic regression on them with stratified k-fold
cross-validation; the sub-folder of each image is its label. With no
checkpoint the trunk keeps its random initialisation (a baseline).

    python -m vissl_pirl_plugin.linear_probe --images data/demo/train \\
        --checkpoint checkpoints/<run>/checkpoint.torch [--crop 128] [config overrides...]
"""
import argparse
import sys
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torchvision.datasets import ImageFolder
from torchvision.transforms import v2
from vissl.models import build_model

from vissl_pirl_plugin.launcher import compose_config
from vissl_pirl_plugin.pirl_pair_transform import IMAGENET_MEAN, IMAGENET_STD
from vissl_pirl_plugin.robust_disk_dataset import load_rgb_image

DEMO_CONFIG = "config=pretrain/pirl/pirl_jigsaw_cpu_demo"


def load_trunk(checkpoint: Optional[Path], overrides: List[str]) -> torch.nn.Module:
    """The config's model with the checkpoint's weights (random init without one), eval mode."""
    torch.manual_seed(0)
    _, cfg = compose_config([DEMO_CONFIG, "config.CHECKPOINT.DIR=/tmp/vissl_pirl_probe",
                             *overrides])
    model = build_model(cfg.MODEL, cfg.OPTIMIZER)
    if checkpoint is not None:
        state = torch.load(checkpoint, map_location="cpu", weights_only=False)
        if "classy_state_dict" not in state:
            raise ValueError(f"{checkpoint} is not a VISSL checkpoint (no classy_state_dict).")
        model.set_classy_state(state["classy_state_dict"]["base_model"])
    return model.trunk.eval()


@torch.no_grad()
def extract_features(trunk: torch.nn.Module, folder: Path, crop: int) -> Tuple[np.ndarray, np.ndarray]:
    dataset = ImageFolder(str(folder), loader=load_rgb_image)
    transform = v2.Compose([v2.PILToTensor(), v2.Resize(crop, antialias=True), v2.CenterCrop(crop),
                            v2.ToDtype(torch.float32, scale=True),
                            v2.Normalize(list(IMAGENET_MEAN), list(IMAGENET_STD))])
    features, labels = [], []
    for start in range(0, len(dataset), 32):
        items = [dataset[i] for i in range(start, min(start + 32, len(dataset)))]
        batch = torch.stack([transform(image) for image, _ in items])
        features.append(trunk(batch, out_feat_keys=["flatten"])[0].flatten(1).numpy())
        labels.extend(label for _, label in items)
    return np.concatenate(features), np.array(labels)


def probe_accuracy(features: np.ndarray, labels: np.ndarray, folds: int = 4, seed: int = 0) -> float:
    """Mean cross-validated accuracy of a logistic regression on standardised features."""
    classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=0.1))
    splits = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return float(cross_val_score(classifier, features, labels, cv=splits).mean())


def main(argv: List[str]) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, default=Path("data/demo/train"))
    parser.add_argument("--checkpoint", type=Path, default=None)
    parser.add_argument("--crop", type=int, default=128)
    args, overrides = parser.parse_known_args(argv)
    features, labels = extract_features(load_trunk(args.checkpoint, overrides), args.images,
                                        args.crop)
    accuracy = probe_accuracy(features, labels)
    source = args.checkpoint or "random initialisation"
    print(f"linear probe accuracy ({len(labels)} images, {len(set(labels))} classes, "
          f"{source}): {accuracy:.4f}")
    return accuracy


if __name__ == "__main__":
    main(sys.argv[1:])

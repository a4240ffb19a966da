"""Linear probes of frozen trunk features on a labelled folder of images (paper §3.2, App. C).

Two probes, each a multinomial logistic regression on standardised, average-pooled
features of every requested trunk stage (VISSL's all-stages benchmark style; each
model is then reported at its best stage, as in Goyal et al. 2019):

- ``category``: the sub-folder of each image is its label; centre crops;
  stratified k-fold cross-validation.
- ``identity``: each image is its own class. The classifier is fit on ``views``
  random views of every image made by the run's own PIRL image augmentation
  (random resized crop, colour jitter, flip) and tested on as many other views: how
  well the features recognise a photograph across the transformations that PIRL
  learns to be invariant to.

The model comes from the run's ``train_config.yaml`` (beside the checkpoint); with
``--random-init`` the same model keeps its random initialisation (the baseline).

    python -m vissl_pirl_plugin.tools.linear_probe --images data/demo/train \\
        --checkpoint checkpoints/<run>/checkpoint.torch [--random-init]
"""
import argparse
import random
import sys
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from tqdm import tqdm
from vissl.data.ssl_transforms import get_transform
from vissl.utils.hydra_config import AttrDict

from vissl_pirl_plugin.data.image_utils import centre_crop
from vissl_pirl_plugin.data.transforms.pirl_pair_transform import IMAGENET_MEAN, IMAGENET_STD
from vissl_pirl_plugin.tools.command_line import run_tool
from vissl_pirl_plugin.tools.demo_data import DEMO_IMAGES
from vissl_pirl_plugin.data.robust_disk_dataset import read_image_folder
from vissl_pirl_plugin.tools.trained_model import config_beside, load_model, run_config
from vissl_pirl_plugin.utils.user_errors import InvalidInputError

PROBES = ("category", "identity")
STAGES = ("res3", "res4", "res5")
Features = Dict[str, np.ndarray]  # stage -> (num_samples, dim)


def pirl_image_view(config: AttrDict) -> Callable:
    """The augmented image view v_I that the run's PIRL transform makes of a PIL image."""
    transform = get_transform(config.DATA.TRAIN.TRANSFORMS)

    def view(image) -> torch.Tensor:
        sample = transform({"data": [image], "label": [0], "data_valid": [1], "data_idx": [0]})
        return sample["data"][0][0]
    return view


@torch.no_grad()
def extract_features(trunk: torch.nn.Module, images: Sequence, transform: Callable,
                     stages: Sequence[str], desc: str, batch_size: int = 64) -> Features:
    """Average-pooled trunk features of ``transform(image)`` for every image, per stage."""
    features: Dict[str, List[np.ndarray]] = {stage: [] for stage in stages}
    for start in tqdm(range(0, len(images), batch_size), desc=desc, unit="batch",
                      file=sys.stdout, leave=False, disable=None):
        batch = torch.stack([transform(image) for image in images[start:start + batch_size]])
        for stage, output in zip(stages, trunk(batch, out_feat_keys=list(stages))):
            pooled = output.mean(dim=(2, 3)) if output.dim() == 4 else output.flatten(1)
            features[stage].append(pooled.numpy())
    return {stage: np.concatenate(parts) for stage, parts in features.items()}


def classifier():
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=0.1))


def probe_accuracy(features: np.ndarray, labels: np.ndarray, folds: int = 4, seed: int = 0) -> float:
    """Mean cross-validated accuracy of a logistic regression on standardised features."""
    splits = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return float(cross_val_score(classifier(), features, labels, cv=splits).mean())


def identity_accuracy(features: np.ndarray, views: int) -> float:
    """Accuracy on views ``views..2*views-1`` of each image of a classifier fit on views
    ``0..views-1``; rows are image-major (``2 * views`` consecutive rows per image)."""
    images = len(features) // (2 * views)
    identity = np.repeat(np.arange(images), 2 * views)
    fit = np.tile(np.arange(2 * views) < views, images)
    model = classifier().fit(features[fit], identity[fit])
    return float(model.score(features[~fit], identity[~fit]))


def run_probes(config: AttrDict, checkpoint: Optional[Path], images: Path,
               probes: Sequence[str] = PROBES, stages: Sequence[str] = STAGES,
               views: int = 3, seed: int = 0,
               view_config: Optional[AttrDict] = None) -> Dict[str, Dict[str, float]]:
    """``{probe: {stage: accuracy}}`` for the checkpoint (random init when None). The views
    (crop size, identity augmentation) are ``view_config``'s PIRL transform's when given (to
    probe models trained with other transforms alike), else the run's own."""
    unknown = sorted(set(probes) - set(PROBES))
    if unknown:
        raise InvalidInputError(f"Unknown probe(s) {unknown}; choose from {list(PROBES)}.")
    trunk = load_model(config, checkpoint, seed=seed).trunk
    view_config = view_config or config
    photos, targets = read_image_folder(images)
    labels = np.array(targets)
    name = checkpoint.name if checkpoint else "random init"
    results: Dict[str, Dict[str, float]] = {}
    if "category" in probes:
        crop = int(view_config.DATA.TRAIN.TRANSFORMS[0].get("image_crop_size", 224))
        view = centre_crop(crop, crop, IMAGENET_MEAN, IMAGENET_STD)
        features = extract_features(trunk, photos, view, stages, f"category probe features ({name})")
        results["category"] = {stage: probe_accuracy(features[stage], labels, seed=seed)
                               for stage in stages}
    if "identity" in probes:
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)
        view = pirl_image_view(view_config)
        repeated = [photo for photo in photos for _ in range(2 * views)]
        features = extract_features(trunk, repeated, view, stages,
                                    f"identity probe features ({name})")
        results["identity"] = {stage: identity_accuracy(features[stage], views)
                               for stage in stages}
    return results


def best_stage(accuracies: Dict[str, float]) -> str:
    return max(accuracies, key=accuracies.get)


def format_results(results: Dict[str, Dict[str, float]], images: Path, source: str) -> str:
    lines = []
    for probe, accuracies in results.items():
        stages = "  ".join(f"{stage} {value:.3f}" for stage, value in accuracies.items())
        best = best_stage(accuracies)
        lines.append(f"{probe:8s} probe on {images} ({source}): {stages}  "
                     f"best {best} {accuracies[best]:.3f}")
    return "\n".join(lines)


def main(argv: List[str]) -> Dict[str, Dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, default=DEMO_IMAGES)
    parser.add_argument("--checkpoint", type=Path, required=True,
                        help="a VISSL checkpoint of the run (its train_config.yaml builds the model)")
    parser.add_argument("--config", type=Path, default=None,
                        help="the run's train_config.yaml (default: beside the checkpoint)")
    parser.add_argument("--random-init", action="store_true",
                        help="probe the run's model at its random initialisation instead")
    parser.add_argument("--probe", nargs="+", default=list(PROBES), choices=PROBES)
    parser.add_argument("--stages", nargs="+", default=list(STAGES))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    config = run_config(args.config or config_beside(args.checkpoint))
    checkpoint = None if args.random_init else args.checkpoint
    results = run_probes(config, checkpoint, args.images, args.probe, args.stages, seed=args.seed)
    print(format_results(results, args.images, str(checkpoint or "random initialisation")))
    return results


def cli() -> None:
    """The console script ``vissl-pirl-probe``: a user's mistake is one line on stderr, exit status 1."""
    run_tool(main)


if __name__ == "__main__":
    cli()

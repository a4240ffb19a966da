"""Invariance analysis of the paper's §5 ("Analysis", Fig. 4).

For every image I of a folder and ``--transforms`` random draws of the run's PIRL
transform (the image view v_I and the transformed view v_It it trains on), computes
the l2 distance between the unit-normalised f(v_I) (trunk + image head) and the
unit-normalised g(v_It) (trunk + pretext head), for the checkpoint and for a
comparison model: the same architecture at random initialisation by default, or
another checkpoint with ``--baseline`` (e.g. a lambda=0 run, whose g is never
trained). Both histograms go into one PNG. Distances lie in [0, 2]; sqrt(2) is the
distance of unrelated (orthogonal) directions, 0 perfect invariance.

    python -m vissl_pirl_plugin.tools.invariance --checkpoint checkpoints/<run>/checkpoint.torch \\
        --images data/demo/train --out invariance.png [--baseline other.torch]
"""
import argparse
import random
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from tqdm import tqdm
from vissl.data.collators import get_collator
from vissl.data.ssl_transforms import get_transform
from vissl.utils.hydra_config import AttrDict

from vissl_pirl_plugin.tools.command_line import run_tool
from vissl_pirl_plugin.tools.demo_data import DEMO_IMAGES
from vissl_pirl_plugin.data.robust_disk_dataset import read_image_folder
from vissl_pirl_plugin.tools.plotting import new_axes, save_png
from vissl_pirl_plugin.tools.trained_model import config_beside, load_model, run_config
from vissl_pirl_plugin.utils.user_errors import InvalidInputError


def unit_distances(f: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Row-wise l2 distance between the unit-normalised rows of f and g (Fig. 4)."""
    if f.shape != g.shape:
        raise ValueError(f"f(v_I) {tuple(f.shape)} and g(v_It) {tuple(g.shape)} differ in shape; "
                         "both heads must project to the same dimension.")
    return (torch.nn.functional.normalize(f, dim=1)
            - torch.nn.functional.normalize(g, dim=1)).norm(dim=1)


def _tensor(output) -> torch.Tensor:
    return output[0] if isinstance(output, (list, tuple)) else output


@torch.no_grad()
def invariance_distances(config: AttrDict, checkpoint: Optional[Path], images: Sequence,
                         transforms: int, seed: int = 0, batch_size: int = 32) -> np.ndarray:
    """The distances for every image and transform draw (the same draws for any model)."""
    if len(config.MODEL.MULTI_INPUT_HEAD_MAPPING) != 2:
        raise InvalidInputError("The invariance analysis needs a two-input PIRL model (image and "
                         "transformed image); this config has MULTI_INPUT_HEAD_MAPPING="
                         f"{config.MODEL.MULTI_INPUT_HEAD_MAPPING}.")
    model = load_model(config, checkpoint, seed=seed)
    train = config.DATA.TRAIN
    transform = get_transform(train.TRANSFORMS)
    collate = get_collator(train.COLLATE_FUNCTION, train.COLLATE_FUNCTION_PARAMS)
    transformed_key, image_key = (entry[0] for entry in config.MODEL.MULTI_INPUT_HEAD_MAPPING)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    samples = [image for image in images for _ in range(transforms)]
    distances = []
    name = checkpoint.name if checkpoint else "random init"
    for start in tqdm(range(0, len(samples), batch_size), desc=f"invariance ({name})",
                      unit="batch", file=sys.stdout, leave=False,
                      disable=None):
        batch = collate([transform({"data": [image], "label": [index], "data_valid": [1],
                                    "data_idx": [index]})
                         for index, image in enumerate(samples[start:start + batch_size])])
        outputs = model({transformed_key: batch[transformed_key][0],
                         image_key: batch[image_key][0]})
        distances.append(unit_distances(_tensor(outputs[1]), _tensor(outputs[0])))
    return torch.cat(distances).numpy()


def plot_histograms(distances: Dict[str, np.ndarray], out: Path, title: str) -> Path:
    figure, axes = new_axes()
    bins = np.linspace(0.0, 2.0, 61)
    for label, values in distances.items():
        axes.hist(values, bins=bins, alpha=0.6, density=True,
                  label=f"{label} (mean {values.mean():.2f}, std {values.std():.2f})")
    axes.axvline(np.sqrt(2), color="grey", linestyle=":", linewidth=1,
                 label=r"$\sqrt{2}$: orthogonal (unrelated)")
    axes.set_xlabel(r"$\ell_2$ distance between unit-norm $f(v_I)$ and $g(v_{I^t})$")
    axes.set_ylabel("density")
    return save_png(figure, axes, title, out)


def main(argv: List[str]) -> Dict[str, np.ndarray]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--images", type=Path, default=DEMO_IMAGES,
                        help="an image folder (disk_folder layout: images in sub-folders)")
    parser.add_argument("--out", type=Path, default=Path("invariance.png"))
    parser.add_argument("--baseline", type=Path, default=None,
                        help="a comparison checkpoint (default: the run's random initialisation)")
    parser.add_argument("--config", type=Path, default=None,
                        help="the run's train_config.yaml (default: beside the checkpoint)")
    parser.add_argument("--transforms", type=int, default=10, help="transform draws per image")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    config = run_config(args.config or config_beside(args.checkpoint))
    images, _ = read_image_folder(args.images)
    baseline_config = run_config(config_beside(args.baseline)) if args.baseline else config
    distances = {
        f"PIRL ({args.checkpoint.name})": invariance_distances(
            config, args.checkpoint, images, args.transforms, args.seed),
        (f"baseline ({args.baseline.name})" if args.baseline else "random initialisation"):
            invariance_distances(baseline_config, args.baseline, images, args.transforms,
                                 args.seed),
    }
    title = f"{len(images)} images x {args.transforms} transforms, {args.images}"
    plot_histograms(distances, args.out, title)
    for label, values in distances.items():
        print(f"invariance {label}: mean distance {values.mean():.3f} (std {values.std():.3f})")
    print(f"Invariance histogram: {args.out.resolve()}")
    return distances


def cli() -> None:
    """The console script ``vissl-pirl-invariance``: a user's mistake is one line on stderr, exit status 1."""
    run_tool(main)


if __name__ == "__main__":
    cli()

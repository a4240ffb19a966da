"""Converts a plugin (VISSL) checkpoint's ResNet trunk to torchvision and Detectron2 weights.

Only the trunk is kept; the PIRL heads (f, g) and the memory bank are dropped, as the
paper does for transfer (Appendix A: "the heads f, g are removed").

* ``--format torchvision``: a ``state_dict`` for ``torchvision.models.resnet50`` (without
  ``fc``; load it with ``strict=False`` or add your own classifier).
* ``--format detectron2``: a pickle with ``{"model": {name: numpy array}, "__author__":
  "vissl-pirl", "matching_heuristics": True}`` and Detectron2's ResNet names (``stem.conv1``,
  ``res2``-``res5``, ``convN.norm``, ``shortcut``), the layout Detectron2's own torchvision
  converter writes, for ``MODEL.WEIGHTS`` with ``MODEL.PIXEL_MEAN/STD`` of torchvision models.

    python -m vissl_pirl_plugin.tools.convert_checkpoint CHECKPOINT OUT --format detectron2
"""
import argparse
import pickle
import re
from collections import OrderedDict
from pathlib import Path
from typing import Dict, List

import torch
import torchvision

from vissl_pirl_plugin.engine.checkpoint_loading import load_checkpoint_safely
from vissl_pirl_plugin.tools.command_line import run_tool
from vissl_pirl_plugin.utils.user_errors import InvalidInputError

VISSL_TRUNK_PREFIX = "_feature_blocks."
TORCHVISION_RESNET_KEYS = re.compile(
    r"^(conv1\.weight|bn1\.(weight|bias|running_mean|running_var|num_batches_tracked)|"
    r"layer[1-4]\.\d+\.(conv[1-3]\.weight|bn[1-3]\.\S+|downsample\.[01]\.\S+))$")


def trunk_state_dict(checkpoint_path: Path) -> Dict[str, torch.Tensor]:
    """The trunk weights of a VISSL checkpoint, with torchvision's ResNet key names."""
    state = load_checkpoint_safely(checkpoint_path)
    try:
        trunk = state["classy_state_dict"]["base_model"]["model"]["trunk"]
    except (KeyError, TypeError):
        raise InvalidInputError(f"{checkpoint_path} is not a PIRL/VISSL checkpoint: no "
                         "classy_state_dict.base_model.model.trunk in it.") from None
    weights = OrderedDict()
    for key, value in trunk.items():
        name = key[len(VISSL_TRUNK_PREFIX):] if key.startswith(VISSL_TRUNK_PREFIX) else key
        if TORCHVISION_RESNET_KEYS.match(name):
            weights[name] = value
    unknown = [key for key in trunk if not TORCHVISION_RESNET_KEYS.match(
        key[len(VISSL_TRUNK_PREFIX):] if key.startswith(VISSL_TRUNK_PREFIX) else key)]
    if unknown or not weights:
        raise InvalidInputError(f"{checkpoint_path}: the trunk is not a VISSL ResNet; unexpected keys "
                         f"{unknown[:5]}{' ...' if len(unknown) > 5 else ''}.")
    return weights


def check_matches(weights: Dict[str, torch.Tensor], model: torch.nn.Module, source: Path) -> None:
    """Raises naming the keys whose shapes differ from ``model``'s (e.g. a ResNet-101 file)."""
    expected = {k: v.shape for k, v in model.state_dict().items() if not k.startswith("fc.")}
    missing = sorted(set(expected) - set(weights))
    mismatched = sorted(k for k in set(expected) & set(weights) if expected[k] != weights[k].shape)
    if missing or mismatched:
        raise InvalidInputError(f"{source}: the trunk does not match {type(model).__name__}: missing "
                         f"{missing[:5]}, shape mismatches {mismatched[:5]}.")


def detectron2_name(torchvision_name: str) -> str:
    """Detectron2's ResNet name for a torchvision ResNet key."""
    name = torchvision_name if "layer" in torchvision_name else "stem." + torchvision_name
    for stage in range(1, 5):
        name = name.replace(f"layer{stage}", f"res{stage + 1}")
    for conv in range(1, 4):
        name = name.replace(f"bn{conv}", f"conv{conv}.norm")
    return name.replace("downsample.0", "shortcut").replace("downsample.1", "shortcut.norm")


def to_detectron2(weights: Dict[str, torch.Tensor]) -> dict:
    model = {detectron2_name(k): v.numpy() for k, v in weights.items()
             if not k.endswith("num_batches_tracked")}
    return {"model": model, "__author__": "vissl-pirl", "matching_heuristics": True}


def main(argv: List[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--format", choices=("torchvision", "detectron2"), default="torchvision")
    parser.add_argument("--depth", type=int, choices=(50, 101, 152), default=50)
    args = parser.parse_args(argv)
    weights = trunk_state_dict(args.checkpoint)
    check_matches(weights, getattr(torchvision.models, f"resnet{args.depth}")(), args.checkpoint)
    if args.format == "torchvision":
        torch.save(weights, args.output)
        written = len(weights)
    else:
        converted = to_detectron2(weights)
        with open(args.output, "wb") as handle:
            pickle.dump(converted, handle)
        written = len(converted["model"])
    print(f"{args.format} weights ({written} tensors): {args.output}")


def cli() -> None:
    """The console script ``vissl-pirl-convert``: a user's mistake is one line on stderr, exit status 1."""
    run_tool(main)


if __name__ == "__main__":
    cli()

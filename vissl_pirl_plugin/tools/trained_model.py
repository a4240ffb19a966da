"""Rebuilds a pre-trained PIRL model (trunk and heads) for evaluation on the CPU.

The model is built from the ``train_config.yaml`` that VISSL writes next to the
checkpoints of a run, so evaluation tools need no repeated overrides; the same
config without a checkpoint gives the random-initialisation baseline.
"""
from pathlib import Path
from typing import Optional

import torch
from omegaconf import OmegaConf
from vissl.models import build_model
from vissl.utils.hydra_config import AttrDict

from vissl_pirl_plugin.engine.checkpoint_loading import load_checkpoint_safely
from vissl_pirl_plugin.utils.user_errors import InvalidInputError, MissingInputError

CONFIG_FILE = "train_config.yaml"


def run_config(config_file: Path) -> AttrDict:
    if not config_file.is_file():
        raise MissingInputError(
            f"{config_file} does not exist. Pass the {CONFIG_FILE} that VISSL wrote into the "
            "run's CHECKPOINT.DIR (it sits beside checkpoint.torch).")
    return AttrDict(OmegaConf.to_container(OmegaConf.load(config_file), resolve=True))


def config_beside(checkpoint: Path) -> Path:
    return checkpoint.resolve().parent / CONFIG_FILE


def load_model(config: AttrDict, checkpoint: Optional[Path] = None,
               seed: int = 0) -> torch.nn.Module:
    """The config's model in eval mode, with the checkpoint's weights or, without one,
    its random initialisation drawn with ``seed``."""
    torch.manual_seed(seed)
    model = build_model(config.MODEL, config.OPTIMIZER)
    if checkpoint is not None:
        state = load_checkpoint_safely(checkpoint)
        if "classy_state_dict" not in state:
            raise InvalidInputError(f"{checkpoint} is not a VISSL checkpoint (no classy_state_dict).")
        try:
            model.set_classy_state(state["classy_state_dict"]["base_model"])
        except RuntimeError as error:
            raise InvalidInputError(f"{checkpoint} does not fit the model of its config "
                             f"(trunk {config.MODEL.TRUNK.NAME}): {error}") from None
    return model.eval()

"""Launching VISSL engines with the plugin's hooks on every path: local, multi-node, SLURM.

``tools/run_distributed_engines.py`` of this repository calls ``main``. It is
VISSL's launcher with two differences: configs are validated before any
worker starts, and ``pirl_hook_generator`` replaces VISSL's hard-coded
``default_hook_generator``, including on SLURM (``slurm_job.submit``), where VISSL's job
object (``_ResumableSlurmJob``) would otherwise train without memory-bank updates.
"""
import contextlib
import os
import sys
from typing import Any, Callable, Iterator, List

from vissl.config import AttrDict
from vissl.utils import distributed_launcher

from vissl_pirl_plugin.engine import slurm_job
# ``(args, config)`` from command-line overrides; a misspelt config or key: ConfigNameError
from vissl_pirl_plugin.engine.config_names import compose as compose_config
from vissl_pirl_plugin.engine.config_validation import (
    prepare_augmentation,
    prepare_batch_norm,
    prepare_data,
    validate_config,
    validate_rendezvous,
    warn_about_nce_on_a_small_dataset,
)
from vissl_pirl_plugin.hooks.hook_generator import pirl_hook_generator
from vissl_pirl_plugin.utils.user_errors import InvalidInputError


class LaunchCheckError(InvalidInputError):
    """A check that ``launch`` makes before any worker starts failed (the config, the data, a
    checkpoint to resume from); the message names the problem and the fix."""


@contextlib.contextmanager
def _checks_before_launch() -> Iterator[None]:
    """Raises the checks' errors (``OSError``, ``ValueError``) as ``LaunchCheckError``, so that
    the command line tells them from failures of the training itself."""
    try:
        yield
    except (OSError, ValueError) as error:
        raise LaunchCheckError(str(error)) from error


def launch(cfg: AttrDict, engine_name: str = "train", node_id: int = 0,
           hook_generator: Callable[[AttrDict], List[Any]] = pirl_hook_generator):
    """Validates ``cfg`` and runs ``engine_name`` locally (this node) or submits it to SLURM.

    Checks that need the data run here for a local launch; for SLURM they run here before
    submission (with the request checked against the partition, ``slurm_job.submit``) and again
    on the allocated node, where node-local data is first seen. A failed check raises
    ``LaunchCheckError`` before any worker starts or any job is submitted.

    ``hook_generator`` lets a user add hooks of their own, on every path; it must return the
    hooks of ``pirl_hook_generator`` too. It is pickled by name for the processes VISSL spawns
    (and on SLURM with the job): a function of a module that they can import.
    """
    with _checks_before_launch():
        prepare_augmentation(cfg)
        prepare_batch_norm(cfg)
        validate_config(cfg)
    # VISSL links checkpoint.torch to the newest checkpoint with a relative target,
    # which dangles when CHECKPOINT.DIR is a relative path with sub-folders
    cfg.CHECKPOINT.DIR = os.path.abspath(cfg.CHECKPOINT.DIR)
    if cfg.SLURM.USE_SLURM:
        with _checks_before_launch():
            return slurm_job.submit(cfg, engine_name, hook_generator)
    with _checks_before_launch():
        validate_rendezvous(cfg.DISTRIBUTED)
        prepare_data(cfg)
    warn_about_nce_on_a_small_dataset(cfg)
    return distributed_launcher.launch_distributed(
        cfg=cfg, node_id=node_id, engine_name=engine_name, hook_generator=hook_generator)


def main(overrides: List[str]):
    args, config = compose_config(overrides)
    return launch(config, engine_name=args.engine_name, node_id=args.node_id)


if __name__ == "__main__":
    main(sys.argv[1:])

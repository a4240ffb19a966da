"""Launching VISSL engines with the plugin's hooks on every path: local, multi-node, SLURM.

``tools/run_distributed_engines.py`` of this repository calls ``main``. It is
VISSL's launcher with two differences: configs are validated before any
worker starts, and ``pirl_hook_generator`` replaces VISSL's hard-coded
``default_hook_generator``, including in the SLURM job object, whose VISSL
version (``_ResumableSlurmJob``) would otherwise train without memory-bank
updates.
"""
import contextlib
import os
import sys
from typing import Any, Callable, Iterator, List

from vissl.config import AttrDict
from vissl.utils import distributed_launcher
from vissl.utils.hydra_config import compose_hydra_configuration, convert_to_attrdict

from vissl_pirl_plugin.engine.config_validation import (
    prepare_augmentation,
    prepare_data,
    validate_config,
    validate_rendezvous,
)
from vissl_pirl_plugin.hooks.hook_generator import pirl_hook_generator
from vissl_pirl_plugin.utils.user_errors import InvalidInputError


class PirlSlurmJob(distributed_launcher._ResumableSlurmJob):
    """VISSL's resumable SLURM job, launching with ``pirl_hook_generator``."""

    def __call__(self) -> None:
        import submitit

        environment = submitit.JobEnvironment()
        prepare_data(self.config)
        self.config.DISTRIBUTED.INIT_METHOD = "tcp"
        self.config.DISTRIBUTED.RUN_ID = f"{environment.hostnames[0]}:{self.config.SLURM.PORT_ID}"
        distributed_launcher.launch_distributed(
            cfg=self.config,
            node_id=environment.global_rank,
            engine_name=self.engine_name,
            hook_generator=pirl_hook_generator,
        )

    def checkpoint(self):
        import submitit

        return submitit.helpers.DelayedSubmission(
            PirlSlurmJob(engine_name=self.engine_name, config=self.config))


@contextlib.contextmanager
def _slurm_job_class(job_class: type) -> Iterator[None]:
    """Makes VISSL's ``launch_distributed_on_slurm`` submit ``job_class`` (its job class
    is a module global), so the plugin reuses VISSL's executor set-up unchanged."""
    original = distributed_launcher._ResumableSlurmJob
    distributed_launcher._ResumableSlurmJob = job_class
    try:
        yield
    finally:
        distributed_launcher._ResumableSlurmJob = original


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
    """Validates ``cfg`` and runs ``engine_name`` locally (this node) or on SLURM.

    Checks that need the data run here for a local launch, and on the allocated
    node (``PirlSlurmJob``) for SLURM, where the submitting host may not see the data. A failed
    check raises ``LaunchCheckError`` before any worker starts.

    ``hook_generator`` lets a user add hooks of their own to the local launch; it
    must return the hooks of ``pirl_hook_generator`` too. SLURM jobs always use
    ``pirl_hook_generator``.
    """
    with _checks_before_launch():
        prepare_augmentation(cfg)
        validate_config(cfg)
    # VISSL links checkpoint.torch to the newest checkpoint with a relative target,
    # which dangles when CHECKPOINT.DIR is a relative path with sub-folders
    cfg.CHECKPOINT.DIR = os.path.abspath(cfg.CHECKPOINT.DIR)
    if cfg.SLURM.USE_SLURM:
        with _slurm_job_class(PirlSlurmJob):
            return distributed_launcher.launch_distributed_on_slurm(cfg=cfg, engine_name=engine_name)
    with _checks_before_launch():
        validate_rendezvous(cfg.DISTRIBUTED)
        prepare_data(cfg)
    return distributed_launcher.launch_distributed(
        cfg=cfg, node_id=node_id, engine_name=engine_name, hook_generator=hook_generator)


def compose_config(overrides: List[str]):
    """``(args, config)`` composed from VISSL's defaults and the command-line overrides."""
    return convert_to_attrdict(compose_hydra_configuration(overrides))


def main(overrides: List[str]):
    args, config = compose_config(overrides)
    return launch(config, engine_name=args.engine_name, node_id=args.node_id)


if __name__ == "__main__":
    main(sys.argv[1:])

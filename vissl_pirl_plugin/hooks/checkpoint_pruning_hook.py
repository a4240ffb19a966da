"""``CheckpointPruningHook``: keeps the newest ``CHECKPOINT.KEEP_LAST_ITER_CHECKPOINTS`` iteration
checkpoints of a run.

VISSL writes ``model_iteration<N>.torch`` every ``CHECKPOINT_ITER_FREQUENCY`` steps and never
deletes one. The paper config checkpoints every 500 steps for a restart that loses little
work; over 800 epochs of ImageNet that is about 2,000 files of 810 MiB (ResNet-50, heads, SGD
momentum and the 1,281,167 x 128 bank; see docs/training.md). Only the newest is needed to
resume. After each step on which VISSL may have written one, and at each epoch end, rank 0
deletes the older iteration checkpoints (with their FSDP shards), never the file that
``checkpoint.torch`` points to. Epoch checkpoints (``model_phase<N>.torch``, every
``CHECKPOINT_FREQUENCY`` epochs) and the final one are never deleted.

The hook runs after VISSL's checkpoint hook, so the checkpoint of the current step exists.
"""
import logging
import os
import re
from collections import defaultdict
from pathlib import Path
from typing import Dict, List

from classy_vision.generic.distributed_util import is_primary

from vissl_pirl_plugin.hooks.noop_hook import NoopHook

ITERATION_CHECKPOINT = re.compile(r"^model_iteration(\d+)(_shard\d+)?\.torch$")
LINK = "checkpoint.torch"


def iteration_checkpoints(folder: Path) -> Dict[int, List[Path]]:
    """The iteration checkpoint files of ``folder`` (an FSDP checkpoint has several) by step."""
    files = defaultdict(list)
    for path in folder.iterdir():
        match = ITERATION_CHECKPOINT.match(path.name)
        if match:
            files[int(match.group(1))].append(path)
    return files


def linked_iteration(folder: Path) -> int:
    """The step of the iteration checkpoint that ``checkpoint.torch`` points to, else -1."""
    link = folder / LINK
    if not link.is_symlink():
        return -1
    target = Path(os.path.realpath(link))
    match = ITERATION_CHECKPOINT.match(target.name)
    return int(match.group(1)) if match and target.parent == folder.resolve() else -1


def stale_iteration_checkpoints(folder: Path, keep: int) -> List[Path]:
    """Files of the iteration checkpoints older than the newest ``keep``, except the one
    ``checkpoint.torch`` points to."""
    files = iteration_checkpoints(folder)
    stale = sorted(files)[:-keep]
    protected = linked_iteration(folder)
    return sorted(path for step in stale if step != protected for path in files[step])


class CheckpointPruningHook(NoopHook):
    def __init__(self, keep: int, checkpoint_iter_frequency: int) -> None:
        super().__init__()
        self.keep = keep
        self.checkpoint_iter_frequency = checkpoint_iter_frequency

    def prune(self, task) -> None:
        if not is_primary():
            return
        for path in stale_iteration_checkpoints(Path(task.checkpoint_folder), self.keep):
            path.unlink(missing_ok=True)
            logging.info(f"Deleted an old iteration checkpoint (CHECKPOINT.KEEP_LAST_ITER_"
                         f"CHECKPOINTS={self.keep}): {path}")

    def on_step(self, task) -> None:
        frequency = self.checkpoint_iter_frequency
        if task.train and frequency > 0 and task.iteration % frequency == 0:
            self.prune(task)

    def on_phase_end(self, task) -> None:
        if task.train:
            self.prune(task)

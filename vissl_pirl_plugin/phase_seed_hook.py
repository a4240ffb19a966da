"""``PhaseSeedHook``: reseeds the random generators at the start of every epoch.

VISSL seeds once per process start, so a run resumed from an epoch checkpoint
draws different augmentations and negatives than the uninterrupted run did.
Seeding ``torch``, ``numpy`` and ``random`` from ``(SEED_VALUE, epoch, rank)`` at
each epoch start makes an epoch's randomness independent of what came before:
with 0 data-loader workers, a run resumed at an epoch boundary then retraces
the uninterrupted run exactly (data-loader worker seeds derive from this too).
"""
import random

import numpy as np
import torch
from classy_vision.generic.distributed_util import get_rank
from classy_vision.hooks.classy_hook import ClassyHook

EPOCH_STRIDE = 1_000_003


class PhaseSeedHook(ClassyHook):
    on_start = ClassyHook._noop
    on_forward = ClassyHook._noop
    on_loss_and_meter = ClassyHook._noop
    on_backward = ClassyHook._noop
    on_update = ClassyHook._noop
    on_step = ClassyHook._noop
    on_phase_end = ClassyHook._noop
    on_end = ClassyHook._noop

    def __init__(self, seed: int) -> None:
        super().__init__()
        self.seed = seed

    def on_phase_start(self, task) -> None:
        seed = (self.seed + EPOCH_STRIDE * (task.train_phase_idx + 1) + 7919 * get_rank()) % 2**31
        torch.manual_seed(seed)
        np.random.seed(seed)
        random.seed(seed)

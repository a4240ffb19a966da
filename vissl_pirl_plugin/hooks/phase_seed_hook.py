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

from vissl_pirl_plugin.hooks.noop_hook import NoopHook

EPOCH_STRIDE = 1_000_003


class PhaseSeedHook(NoopHook):
    def __init__(self, seed: int) -> None:
        super().__init__()
        self.seed = seed

    def on_phase_start(self, task) -> None:
        seed = (self.seed + EPOCH_STRIDE * (task.train_phase_idx + 1) + 7919 * get_rank()) % 2**31
        torch.manual_seed(seed)
        np.random.seed(seed)
        random.seed(seed)

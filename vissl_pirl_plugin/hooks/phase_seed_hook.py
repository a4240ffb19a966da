"""``PhaseSeedHook``: reseeds the random generators of every epoch, data-loader workers included.

VISSL seeds once per process start, so a run resumed from an epoch checkpoint
draws different augmentations and negatives than the uninterrupted run did.
Seeding ``torch``, ``numpy`` and ``random`` from ``(SEED_VALUE, epoch, rank)`` at
each epoch start makes an epoch's randomness independent of what came before.

That alone covers the main process (0 data-loader workers). With workers, the
augmentations are drawn in the workers, whose seeds PyTorch takes from the
loader's ``generator`` (or the global RNG) when the epoch's iterator is built:
VISSL builds it in ``SelfSupervisionTrainer._advance_phase``, *before*
``on_phase_start``. So the hook also gives every loader a generator seeded from
``(SEED_VALUE, phase, rank)`` for the phase about to start, at ``on_start`` (the
first phase, or the first after a resume) and at ``on_phase_end`` (the next one);
VISSL's ``set_dataloader_seeds`` derives the workers' numpy and ``random`` seeds
from their torch seeds. A run resumed at an epoch boundary then retraces the
uninterrupted run exactly with any number of workers (``tests/test_reliability.py``).
"""
import random

import numpy as np
import torch
from classy_vision.generic.distributed_util import get_rank

from vissl_pirl_plugin.hooks.noop_hook import NoopHook

EPOCH_STRIDE = 1_000_003
RANK_STRIDE = 7919
# keeps the loaders' seeds apart from the main process's for the same phase
LOADER_STREAM = 0x5EED


def phase_seed(seed: int, phase: int, rank: int) -> int:
    """The seed of ``phase`` (0-based) on ``rank`` for a run seeded with ``seed``."""
    return (seed + EPOCH_STRIDE * (phase + 1) + RANK_STRIDE * rank) % 2**31


class PhaseSeedHook(NoopHook):
    def __init__(self, seed: int) -> None:
        super().__init__()
        self.seed = seed

    def on_start(self, task) -> None:
        self.seed_loaders(task)

    def on_phase_start(self, task) -> None:
        seed = phase_seed(self.seed, task.train_phase_idx, get_rank())
        torch.manual_seed(seed)
        np.random.seed(seed)
        random.seed(seed)

    def on_phase_end(self, task) -> None:
        self.seed_loaders(task)

    def seed_loaders(self, task) -> None:
        """Seeds the generator that the next phase's data iterator draws its workers' seeds from."""
        seed = phase_seed(self.seed ^ LOADER_STREAM, task.phase_idx + 1, get_rank())
        for loader in task.dataloaders.values():
            loader.generator = torch.Generator().manual_seed(seed)

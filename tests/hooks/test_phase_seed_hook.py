"""PhaseSeedHook on a stand-in task: the data-loader workers' seeds of an epoch depend on the
seed and the epoch only, not on what the process did before (the resume case)."""
from types import SimpleNamespace

import torch
from torch.utils.data import DataLoader

from vissl_pirl_plugin.hooks.phase_seed_hook import PhaseSeedHook


def workers_base_seed(loader: DataLoader) -> int:
    """The seed PyTorch gives the epoch's workers (worker i gets it + i)."""
    return iter(loader)._base_seed


def test_the_next_epochs_worker_seeds_are_the_same_after_a_resume():
    loader = DataLoader(list(range(4)), batch_size=2)
    # uninterrupted: epoch 0 ran (drawing random numbers), its end prepares epoch 1's loader
    torch.manual_seed(0)
    torch.rand(100)
    PhaseSeedHook(seed=3).on_phase_end(SimpleNamespace(phase_idx=0, dataloaders={"train": loader}))
    uninterrupted = workers_base_seed(loader)
    # resumed after epoch 0 in a fresh process: VISSL calls on_start before epoch 1's loader
    torch.manual_seed(12345)
    PhaseSeedHook(seed=3).on_start(SimpleNamespace(phase_idx=0, dataloaders={"train": loader}))
    assert workers_base_seed(loader) == uninterrupted


def test_every_epoch_and_seed_gets_its_own_worker_seeds():
    loader = DataLoader(list(range(4)), batch_size=2)
    seeds = set()
    for seed in (0, 1):
        for phase_idx in (-1, 0, 1):
            PhaseSeedHook(seed).on_start(SimpleNamespace(phase_idx=phase_idx,
                                                         dataloaders={"train": loader}))
            seeds.add(workers_base_seed(loader))
    assert len(seeds) == 6

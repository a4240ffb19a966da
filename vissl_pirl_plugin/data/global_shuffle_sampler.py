"""``GlobalShuffleSampler``: every epoch a fresh permutation of the whole dataset, split across
the ranks, with VISSL's mid-epoch resume (``DATA.TRAIN.RANK_SPLIT: global_shuffle``).

VISSL 0.1.6's ``StatefulDistributedSampler`` gives rank ``r`` the fixed contiguous block
``r * n .. (r + 1) * n - 1`` of the dataset for the whole run and shuffles only inside it, with
the same permutation on every rank. A folder read in class order then puts the same few classes
on each rank in every epoch, and with per-rank batch norm (the paper config, as VISSL's PIRL
YAML) every rank normalises its batches with the statistics of its own classes, and every bank
row of an image is written with the statistics of the same rank: a shortcut of the kind MoCo's
shuffled batch norm removes (docs/training.md, "Several ranks: the data split and batch norm").

Here the permutation, seeded by ``(seed, epoch)`` as VISSL's, is of the whole dataset and rank
``r`` takes its ``r``-th contiguous share, so every image visits every rank over the epochs and
every sample is drawn once per epoch. With one rank the order is exactly VISSL's. When ``|D|``
is not a multiple of the world size, the permutation's first samples are repeated at its end, as
PyTorch's ``DistributedSampler`` does, instead of VISSL's dropping of the last ``|D| mod W``
samples of the dataset in every epoch. A run resumed from an iteration checkpoint restarts at
``start_iter * batch_size`` of the same permutation (VISSL's ``set_start_iter``): it sees exactly
the samples the uninterrupted run would have seen.
"""
import logging
import math
from typing import Any, Dict, Iterator, Optional

import torch
from torch.utils.data import Dataset, DistributedSampler
from vissl.data import get_sampler
from vissl.data.data_helper import StatefulDistributedSampler

GLOBAL_SHUFFLE = "global_shuffle"
VISSL_BLOCKS = "vissl_blocks"
RANK_SPLITS = (GLOBAL_SHUFFLE, VISSL_BLOCKS)


class GlobalShuffleSampler(StatefulDistributedSampler):
    """A permutation of the whole dataset per epoch, split into contiguous per-rank shares."""

    def __init__(self, dataset: Dataset, batch_size: int, seed: int = 0,
                 num_replicas: Optional[int] = None, rank: Optional[int] = None) -> None:
        """``num_replicas`` and ``rank`` default to the process group's (as PyTorch's sampler)."""
        DistributedSampler.__init__(self, dataset, num_replicas=num_replicas, rank=rank,
                                    shuffle=False, seed=seed)
        self.start_iter = 0
        self.batch_size = batch_size
        self.num_samples = math.ceil(len(dataset) / self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas
        logging.info(f"rank {self.rank}: GlobalShuffleSampler (DATA.TRAIN.RANK_SPLIT="
                     f"{GLOBAL_SHUFFLE}): {self.num_samples} of {len(dataset)} samples per epoch")

    def epoch_permutation(self) -> torch.Tensor:
        """The epoch's permutation of every index, padded to ``total_size``."""
        generator = torch.Generator()
        generator.manual_seed(self.epoch + self.seed)
        order = torch.randperm(len(self.dataset), generator=generator)
        padding = self.total_size - len(order)
        if padding:
            order = torch.cat([order, order.repeat(math.ceil(padding / len(order)))[:padding]])
        return order

    def __iter__(self) -> Iterator[int]:
        if not self.batch_size or self.batch_size < 1:
            raise ValueError("GlobalShuffleSampler needs a positive batch_size to resume at an "
                             f"iteration, got {self.batch_size}.")
        share = self.epoch_permutation()[self.rank * self.num_samples:
                                         (self.rank + 1) * self.num_samples]
        return iter(share[self.start_iter * self.batch_size:].tolist())


def build_sampler(dataset: Dataset, dataset_config: Dict[str, Any],
                  sampler_seed: int = 0) -> Optional[torch.utils.data.Sampler]:
    """VISSL's ``get_sampler`` with ``RANK_SPLIT: global_shuffle`` for its stateful sampler.

    ``dataset_config`` is ``DATA.TRAIN`` (or ``DATA.TEST``); without a ``RANK_SPLIT`` key, with
    ``vissl_blocks``, VISSL's debugging sampler or without the stateful sampler, VISSL's own
    choice is kept (PyTorch's ``DistributedSampler`` already shuffles across ranks).
    """
    split = dataset_config.get("RANK_SPLIT", VISSL_BLOCKS)
    if split not in RANK_SPLITS:
        raise ValueError(f"DATA.TRAIN.RANK_SPLIT={split!r} is not a way to split the data across "
                         f"ranks: use one of {', '.join(RANK_SPLITS)}.")
    if (split == GLOBAL_SHUFFLE and torch.distributed.is_available()
            and torch.distributed.is_initialized()
            and dataset_config["USE_STATEFUL_DISTRIBUTED_SAMPLER"]
            and not dataset_config["USE_DEBUGGING_SAMPLER"]):
        return GlobalShuffleSampler(dataset, batch_size=dataset_config["BATCHSIZE_PER_REPLICA"],
                                    seed=sampler_seed)
    return get_sampler(dataset, dataset_config, sampler_seed)

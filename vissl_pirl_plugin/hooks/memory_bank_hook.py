"""``MemoryBankUpdateHook``: keeps PIRL's memory bank current and identical on all ranks (§2.2).

Once per step, after the optimizer step (``on_update``), it gathers the
normalised ``f(v_I)`` of the untransformed images and their dataset indices
from all ranks and applies the EMA update to the bank, so every rank holds the
same bank. Samples labelled ``ignore_index`` (images that failed to load) are
dropped. At the start of training the bank is broadcast from rank 0, so ranks
agree even if their initialisations differed.

With ``consistency_check_period`` N > 0, every N updates each rank computes a
cheap checksum of its bank and compares it with every other rank's; any drift
stops the run with a ``RuntimeError`` naming the step and the ranks.

A sharded bank (``memory_bank.sharded``) is neither broadcast nor compared (ranks
hold different rows); before each epoch end and each step that VISSL may
checkpoint (``CHECKPOINT_ITER_FREQUENCY``), the hook assembles it on rank 0 so the
checkpoint holds the whole bank.
"""
from typing import List

import torch
from classy_vision.generic.distributed_util import (
    broadcast,
    gather_from_all,
    is_distributed_training_run,
)

from vissl_pirl_plugin.hooks.noop_hook import NoopHook
from vissl_pirl_plugin.losses.pirl_loss import PIRLLoss


class MemoryBankUpdateHook(NoopHook):
    def __init__(self, consistency_check_period: int = 0, checkpoint_iter_frequency: int = 0) -> None:
        super().__init__()
        self.consistency_check_period = consistency_check_period
        self.checkpoint_iter_frequency = checkpoint_iter_frequency
        self.updates = 0

    @staticmethod
    def pirl_loss(task) -> PIRLLoss:
        loss = task.base_loss
        if not isinstance(loss, PIRLLoss):
            raise TypeError(f"MemoryBankUpdateHook needs LOSS.name=pirl_loss, got {type(loss)}.")
        return loss

    def on_start(self, task) -> None:
        if is_distributed_training_run() and not self.pirl_loss(task).memory_bank.sharded:
            bank = self.pirl_loss(task).memory_bank.embeddings
            bank.copy_(broadcast(bank, src=0))

    def on_update(self, task) -> None:
        if not task.train:
            return
        loss = self.pirl_loss(task)
        embeddings, indices = loss.memory_update_inputs(task.last_batch.model_output,
                                                        task.last_batch.target)
        if is_distributed_training_run():
            embeddings, indices = gather_from_all(embeddings), gather_from_all(indices)
        keep = indices != loss.ignore_index
        bank = loss.memory_bank
        bank.checkpoint_copy = None  # a copy assembled for an earlier checkpoint is stale now
        bank.update(embeddings[keep], indices[keep])
        self.updates += 1
        period = self.consistency_check_period
        if period > 0 and self.updates % period == 0 and not bank.sharded:
            check_same_on_all_ranks(bank.embeddings, task.iteration)

    def on_step(self, task) -> None:
        frequency = self.checkpoint_iter_frequency
        if task.train and frequency > 0 and task.iteration % frequency == 0:
            self.pirl_loss(task).memory_bank.gather_for_checkpoint()

    def on_phase_end(self, task) -> None:
        if task.train:
            self.pirl_loss(task).memory_bank.gather_for_checkpoint()


def bank_checksum(bank: torch.Tensor) -> torch.Tensor:
    """Two float64 sums of the bank, the second weighted by position (catches swapped rows)."""
    flat = bank.detach().reshape(-1).double()
    weights = torch.arange(1, flat.numel() + 1, device=flat.device, dtype=torch.float64)
    return torch.stack([flat.sum(), (flat * weights).sum() / flat.numel()])


def check_same_on_all_ranks(bank: torch.Tensor, step: int) -> None:
    if not is_distributed_training_run():
        return
    checksums: List[List[float]] = gather_from_all(bank_checksum(bank).unsqueeze(0)).tolist()
    drifted = [rank for rank, checksum in enumerate(checksums) if checksum != checksums[0]]
    if drifted:
        raise RuntimeError(
            f"Memory bank differs across ranks at step {step}: ranks {drifted} disagree with rank 0 "
            f"(checksums {checksums}). Ranks must hold identical banks; the run is stopped so that "
            "no drifted bank is checkpointed. Resume from the last checkpoint.")

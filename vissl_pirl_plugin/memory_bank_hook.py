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
"""
from typing import List

import torch
from classy_vision.generic.distributed_util import (
    broadcast,
    gather_from_all,
    is_distributed_training_run,
)

from vissl_pirl_plugin.noop_hook import NoopHook
from vissl_pirl_plugin.pirl_loss import PIRLLoss


class MemoryBankUpdateHook(NoopHook):
    def __init__(self, consistency_check_period: int = 0) -> None:
        super().__init__()
        self.consistency_check_period = consistency_check_period
        self.updates = 0

    @staticmethod
    def pirl_loss(task) -> PIRLLoss:
        loss = task.base_loss
        if not isinstance(loss, PIRLLoss):
            raise TypeError(f"MemoryBankUpdateHook needs LOSS.name=pirl_loss, got {type(loss)}.")
        return loss

    def on_start(self, task) -> None:
        if is_distributed_training_run():
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
        loss.memory_bank.update(embeddings[keep], indices[keep])
        self.updates += 1
        if self.consistency_check_period > 0 and self.updates % self.consistency_check_period == 0:
            check_same_on_all_ranks(loss.memory_bank.embeddings, task.iteration)


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

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
hold different rows); before each step and epoch end at which VISSL writes a checkpoint
(``checkpoint_schedule``), the hook gathers it on rank 0 so the checkpoint holds the whole
bank, and only then.

The step makes no host sync here: failed images are masked, not dropped by boolean
indexing, and bad indices are recorded for ``NonFiniteGuardHook`` to agree on.

What the bank does is logged (rank 0): at the start of a resumed run, how many rows the
checkpoint restored as written; at the first update, that the bank is being updated (from the
shapes alone, no read of the device); at the end of every training epoch, the rows written so
far out of ``|D|`` and their mean norm (``MemoryBank.written_rows``, two numbers read to the
host once per epoch).
"""
import logging
from typing import List

import torch
from classy_vision.generic.distributed_util import (
    broadcast,
    gather_from_all,
    is_distributed_training_run,
    is_primary,
)

from vissl_pirl_plugin.hooks.checkpoint_schedule import (
    writes_iteration_checkpoint,
    writes_phase_checkpoint,
)
from vissl_pirl_plugin.hooks.noop_hook import NoopHook
from vissl_pirl_plugin.losses.pirl_loss import PIRLLoss


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
        bank = self.pirl_loss(task).memory_bank
        if is_distributed_training_run() and not bank.sharded:
            bank.embeddings.copy_(broadcast(bank.embeddings, src=0))
        if bank.restored_rows is not None and is_primary():
            logging.info(f"Memory bank: restored from the checkpoint, {bank.restored_rows} of "
                         f"{bank.num_entries} rows written before it (the others still hold their "
                         "random start).")

    def on_update(self, task) -> None:
        if not task.train:
            return
        loss = self.pirl_loss(task)
        embeddings, indices = loss.memory_update_inputs(task.last_batch.model_output,
                                                        task.last_batch.target)
        if is_distributed_training_run():
            embeddings, indices = gather_from_all(embeddings), gather_from_all(indices)
        bank = loss.memory_bank
        bank.checkpoint_copy = None  # a copy assembled for an earlier checkpoint is stale now
        bank.update(embeddings, indices, keep=indices != loss.ignore_index)
        self.updates += 1
        if self.updates == 1 and is_primary():
            logging.info(f"Memory bank: first update at training step {task.iteration}, "
                         f"{indices.shape[0]} entries of the global batch written into the bank "
                         f"of {bank.num_entries} rows ({bank.describe()}).")
        period = self.consistency_check_period
        if period > 0 and self.updates % period == 0 and not bank.sharded:
            check_same_on_all_ranks(bank.embeddings, task.iteration)

    def on_step(self, task) -> None:
        if writes_iteration_checkpoint(task):
            self.pirl_loss(task).memory_bank.gather_for_checkpoint()

    def on_phase_end(self, task) -> None:
        bank = self.pirl_loss(task).memory_bank
        if writes_phase_checkpoint(task):
            bank.gather_for_checkpoint()
        if task.train:
            written, mean_norm = bank.written_rows()
            restored = ("" if bank.restored_rows is None
                        else f"; {bank.restored_rows} restored from the checkpoint")
            if is_primary():
                logging.info(f"Memory bank after epoch {task.train_phase_idx}: {written} of "
                             f"{bank.num_entries} rows written ({100 * written / bank.num_entries:.1f}%)"
                             f", mean norm {mean_norm:.4f}{restored}.")


CHECKSUM_CHUNK_ROWS = 65536


def bank_checksum(bank: torch.Tensor) -> torch.Tensor:
    """Two float64 sums of the bank, the second weighted by position (catches swapped rows).

    Computed ``CHECKSUM_CHUNK_ROWS`` rows at a time: float64 copies of one chunk only
    (ImageNet's bank would need 1.2 GiB, plus as much for the weights).
    """
    flat = bank.detach().reshape(bank.shape[0], -1)
    width = flat.shape[1]
    total = torch.zeros(2, dtype=torch.float64, device=bank.device)
    for start in range(0, flat.shape[0], CHECKSUM_CHUNK_ROWS):
        chunk = flat[start:start + CHECKSUM_CHUNK_ROWS].double().reshape(-1)
        first = start * width + 1
        weights = torch.arange(first, first + chunk.numel(), device=bank.device,
                               dtype=torch.float64)
        total += torch.stack([chunk.sum(), (chunk * weights).sum()])
    return total / torch.tensor([1.0, max(1, bank.numel())], dtype=torch.float64,
                                device=bank.device)


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

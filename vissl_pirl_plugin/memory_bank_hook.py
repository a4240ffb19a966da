"""``MemoryBankUpdateHook``: keeps PIRL's memory bank current (paper §2.2).

Once per step, after the optimizer step (``on_update``), it gathers the
normalised ``f(v_I)`` of the untransformed images and their dataset indices
from all ranks and applies the EMA update to the bank, so every rank holds the
same bank. Samples labelled ``ignore_index`` (images that failed to load) are
dropped. At the start of training the bank is broadcast from rank 0, so ranks
agree even if their initialisations differed.
"""
import torch
from classy_vision.generic.distributed_util import (
    broadcast,
    gather_from_all,
    is_distributed_training_run,
)
from classy_vision.hooks.classy_hook import ClassyHook

from vissl_pirl_plugin.pirl_loss import PIRLLoss


class MemoryBankUpdateHook(ClassyHook):
    on_phase_start = ClassyHook._noop
    on_forward = ClassyHook._noop
    on_loss_and_meter = ClassyHook._noop
    on_backward = ClassyHook._noop
    on_step = ClassyHook._noop
    on_phase_end = ClassyHook._noop
    on_end = ClassyHook._noop

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

"""``NonFiniteGuardHook``: stops every rank at the first NaN/Inf or bad index, before anything
is saved.

VISSL's own checks of a non-finite model output or loss run on each rank alone, after a host
read every step, and its checkpoint hook reacts to a non-finite output by writing an iteration
checkpoint of the broken model, which auto-resume then prefers over the last good one. With
``pirl_loss`` this hook replaces them (``guarded_checkpoint_hook``). Its checks make no host
sync: a non-finite model output, a non-finite loss (``pirl_loss``) and a dataset index outside
the memory bank (``MemoryBank.check_indices``) are recorded on the device in the bank's
``FailureRecord``. Every rank then agrees on them (``distributed_checks``: one all-reduce of a
small table), and if any rank failed every rank raises the same error naming the step, the
ranks and the check, so no rank waits for another in a collective.

They agree:

* in ``on_loss_and_meter`` every ``check_period`` steps (``LOSS.pirl_loss.check_period``,
  default 1: every step), after the loss has recorded its checks: the agreement is started
  there (all-reduced, copied to pinned host memory without waiting) and read at the next
  check, so the step makes no host sync and a failure stops every rank one check later, all at
  the same step, with the message naming the step of the check that found it (the step of the
  failure itself at ``check_period`` 1);
* at once, in ``on_loss_and_meter`` when the loss VISSL has already read to the host (averaged
  over ranks, so every rank sees the same value) is non-finite, in ``on_step`` of a step VISSL
  checkpoints, at every ``on_phase_end`` and at ``on_end`` (the pending agreement first), so a
  failure between checks is never saved nor left unread.
"""
import math
from typing import List, Optional, Union

import torch

from vissl_pirl_plugin.utils.distributed_checks import (
    NON_FINITE_OUTPUT,
    FailureRecord,
    PendingAgreement,
    agree_on_failures,
    finish_agreement,
    start_agreement,
)
from vissl_pirl_plugin.hooks.checkpoint_schedule import writes_iteration_checkpoint
from vissl_pirl_plugin.hooks.noop_hook import NoopHook


class NonFiniteGuardHook(NoopHook):
    def __init__(self, check_period: int = 1) -> None:
        super().__init__()
        if check_period < 1:
            raise ValueError(f"LOSS.pirl_loss.check_period={check_period} must be >= 1 "
                             "(1: check every step).")
        self.check_period = check_period
        self.steps = 0
        self.pending: Optional[PendingAgreement] = None  # started at the last check, unread

    @staticmethod
    def failures(task) -> FailureRecord:
        return task.base_loss.memory_bank.failures

    def on_forward(self, task) -> None:
        count = non_finite_count(task.last_batch.model_output)
        self.failures(task).record(NON_FINITE_OUTPUT, count > 0, count)

    def on_loss_and_meter(self, task) -> None:
        if task.losses and not math.isfinite(task.losses[-1]):
            self.agree_now(task)
            raise FloatingPointError(  # no rank recorded it, yet every rank sees it
                f"Non-finite loss ({task.losses[-1]:g}, averaged over ranks) at training step "
                f"{task.iteration}. Every rank stops here with this message. Lower the learning "
                "rate or check the data.")
        self.steps += 1
        if self.steps % self.check_period == 0:
            self.settle()
            self.pending = start_agreement(self.failures(task), task.iteration)

    def settle(self) -> None:
        """Reads the agreement started at the last check (raises if a rank failed)."""
        pending, self.pending = self.pending, None
        if pending is not None:
            finish_agreement(pending)

    def agree_now(self, task) -> None:
        self.settle()
        agree_on_failures(self.failures(task), task.iteration)

    def on_step(self, task) -> None:
        if writes_iteration_checkpoint(task):
            self.agree_now(task)

    def on_phase_end(self, task) -> None:
        self.agree_now(task)

    def on_end(self, task) -> None:
        self.agree_now(task)


def non_finite_count(value: Union[torch.Tensor, List[torch.Tensor]]) -> torch.Tensor:
    """The number of NaN/Inf elements, as a tensor on the output's device (no host sync)."""
    tensors = value if isinstance(value, (list, tuple)) else [value]
    return sum((~torch.isfinite(t.detach())).sum() for t in tensors)

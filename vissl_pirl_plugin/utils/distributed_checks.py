"""Cross-rank agreement on failed checks: every rank stops together, with the same message.

A check that raises on one rank only leaves the others waiting in their next collective
until the NCCL watchdog fires (10 to 30 minutes). Instead, a check *records* its failure on
the device, without a host sync (``FailureRecord.record``), and at agreed points every rank
calls ``agree_on_failures``: one all-reduce of a ``(world, 2)`` float64 table (each rank's
first failed check and the offending value) and one host read of it. If any rank failed,
every rank raises the same exception naming the failing ranks, the check and the fix.

A step needs no blocking read for this: ``start_agreement`` all-reduces the table and copies
it into pinned host memory without waiting (``non_blocking``), behind a CUDA event, and
``finish_agreement`` reads it one step later, when the device has long finished it. Every
rank reads the same step's table, so all still stop at the same step.

Imports nothing from the plugin, so losses and hooks alike can use it.
"""
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple, Type

import torch
from classy_vision.generic.distributed_util import all_reduce_sum, get_rank, get_world_size

NON_FINITE_OUTPUT = "non-finite model output"
NON_FINITE_LOSS = "non-finite loss"
INDEX_OUTSIDE_BANK = "dataset index outside the memory bank"

# check -> (exception type, what failed given the recorded value, the fix); a check's code is
# its position here plus 1
CHECKS: Dict[str, Tuple[Type[Exception], str, str]] = {
    NON_FINITE_OUTPUT: (FloatingPointError, "Non-finite model output ({value:g} values)",
                        "Lower the learning rate or check the data."),
    NON_FINITE_LOSS: (FloatingPointError, "Non-finite loss ({value:g})",
                      "Lower the learning rate or check the data."),
    INDEX_OUTSIDE_BANK: (IndexError, "Dataset index {value:.0f} is outside the memory bank",
                         "The bank is sized from the training dataset (loss num_train_samples): "
                         "check that DATA.TRAIN.LABEL_TYPE is sample_index and that the dataset "
                         "did not grow since the checkpoint was written."),
}
NAMES: List[str] = list(CHECKS)


class FailureRecord:
    """This rank's first failed check since the last agreement, held on the device."""

    def __init__(self) -> None:
        self.state: Optional[torch.Tensor] = None  # float64 (code, value); code 0: no failure

    def record(self, check: str, failed: torch.Tensor, value: torch.Tensor) -> None:
        """Notes ``check`` as failed where the boolean scalar ``failed`` is true; no host sync.

        ``value`` (a scalar tensor, e.g. the bad index) goes into the message. An earlier
        failure is kept.
        """
        code = float(NAMES.index(check) + 1)
        failed = failed.to(torch.float64)
        new = torch.stack([failed * code, torch.where(failed > 0, value.detach().to(torch.float64),
                                                      torch.zeros_like(failed))])
        if self.state is None:
            self.state = new
        else:
            self.state = torch.where(self.state[0] > 0, self.state, new.to(self.state.device))

    def take(self) -> Optional[torch.Tensor]:
        state, self.state = self.state, None
        return state


@dataclass
class PendingAgreement:
    """The all-reduced failure table of one step, on its way to the host."""

    table: torch.Tensor  # on the host (pinned memory when it comes from a CUDA device)
    ready: Optional[torch.cuda.Event]  # recorded after the copy; None: already on the host
    step: int


def start_agreement(record: FailureRecord, step: int) -> PendingAgreement:
    """Collective: all-reduces ``record``'s failures of every rank; no host sync.

    Call it on every rank at the same point of the step; ``finish_agreement`` raises.
    """
    state = record.take()
    table = torch.zeros(get_world_size(), 2, dtype=torch.float64,
                        device=state.device if state is not None else "cpu")
    if state is not None:
        table[get_rank()] = state
    table = all_reduce_sum(table)
    if table.device.type != "cuda":
        return PendingAgreement(table, None, step)
    host = torch.empty(table.shape, dtype=table.dtype, pin_memory=True)
    host.copy_(table, non_blocking=True)
    ready = torch.cuda.Event()
    ready.record()
    return PendingAgreement(host, ready, step)


def finish_agreement(pending: PendingAgreement) -> None:
    """Raises on every rank if the agreed table holds a failure of any rank.

    Waits for the table's copy only if the device has not finished it yet (``Event.query``
    in a loop, not a synchronising CUDA call): started a step earlier, it is done by then.
    """
    while pending.ready is not None and not pending.ready.query():
        time.sleep(20e-6)
    failures = [(rank, NAMES[int(code) - 1], value)
                for rank, (code, value) in enumerate(pending.table.tolist()) if code > 0]
    if not failures:
        return
    error, _, fix = CHECKS[failures[0][1]]
    what = "; ".join(f"{CHECKS[check][1].format(value=value)} at training step {pending.step} "
                     f"on rank {rank}" for rank, check, value in failures)
    raise error(
        f"{what}. Every rank stops here with this message; nothing was saved after the "
        f"failure, so the last checkpoint is good and auto-resume restarts from it. {fix}")


def agree_on_failures(record: FailureRecord, step: int) -> None:
    """Collective: raises on every rank if ``record`` holds a failure on any rank.

    One all-reduce of a ``(world, 2)`` table and one host read, now; call it on every rank at
    the same point of the step.
    """
    finish_agreement(start_agreement(record, step))

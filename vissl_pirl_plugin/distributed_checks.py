"""Cross-rank agreement on failed checks: every rank stops together, with the same message.

A check that raises on one rank only leaves the others waiting in their next collective
until the NCCL watchdog fires (10 to 30 minutes). Instead, a check *records* its failure on
the device, without a host sync (``FailureRecord.record``), and at agreed points every rank
calls ``agree_on_failures``: one all-reduce of a ``(world, 2)`` float64 table (each rank's
first failed check and the offending value) and one host read of it. If any rank failed,
every rank raises the same exception naming the failing ranks, the check and the fix.

Imports nothing from the plugin, so losses and hooks alike can use it.
"""
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


def agree_on_failures(record: FailureRecord, step: int) -> None:
    """Collective: raises on every rank if ``record`` holds a failure on any rank.

    One all-reduce of a ``(world, 2)`` table and one host read; call it on every rank at
    the same point of the step.
    """
    state = record.take()
    table = torch.zeros(get_world_size(), 2, dtype=torch.float64,
                        device=state.device if state is not None else "cpu")
    if state is not None:
        table[get_rank()] = state
    failures = [(rank, NAMES[int(code) - 1], value)
                for rank, (code, value) in enumerate(all_reduce_sum(table).tolist()) if code > 0]
    if not failures:
        return
    error, _, fix = CHECKS[failures[0][1]]
    what = "; ".join(f"{CHECKS[check][1].format(value=value)} at training step {step} on rank "
                     f"{rank}" for rank, check, value in failures)
    raise error(
        f"{what}. Every rank stops here with this message; nothing was saved after the "
        f"failure, so the last checkpoint is good and auto-resume restarts from it. {fix}")

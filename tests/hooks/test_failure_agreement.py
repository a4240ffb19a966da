"""Every rank stops together when a check fails on one (issue 13, defect 3).

Two gloo processes run the plugin's hooks and loss in the order of VISSL's train step; rank
1 gets a non-finite model output or an index outside the bank at step 3. Both must stop
promptly with the same message naming rank 1; before, rank 1 raised alone and rank 0 hung
in the next collective (the test's timeout catches a hang).
"""
import re
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from classy_vision.generic.distributed_util import all_reduce_mean

from vissl_pirl_plugin.hooks.memory_bank_hook import MemoryBankUpdateHook
from vissl_pirl_plugin.hooks.non_finite_guard_hook import NonFiniteGuardHook
from vissl_pirl_plugin.losses.pirl_loss import PIRLLoss

TIMEOUT_S = 60
FAULT_STEP = 3


def train_steps(rank: int, init_file: str, fault: str, check_period: int, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    torch.manual_seed(rank)
    loss = PIRLLoss(num_train_samples=64, num_negatives=5, embedding_dim=4)
    hooks = [NonFiniteGuardHook(check_period), MemoryBankUpdateHook()]
    task = SimpleNamespace(train=True, iteration=0, base_loss=loss, losses=[],
                           train_phase_idx=0, num_train_phases=1, last_batch=SimpleNamespace(),
                           config={"CHECKPOINT": {"CHECKPOINT_ITER_FREQUENCY": 0,
                                                  "CHECKPOINT_FREQUENCY": 1}})
    try:
        for step in range(1, 7):
            g, f = torch.randn(2, 4, requires_grad=True), torch.randn(2, 4, requires_grad=True)
            target = torch.tensor([4 * step + 2 * rank, 4 * step + 2 * rank + 1])
            if rank == 1 and step == FAULT_STEP:
                if fault == "nan":
                    g = torch.full((2, 4), float("nan"), requires_grad=True)
                else:
                    target[1] = 64
            task.last_batch.model_output, task.last_batch.target = [g, f], target
            for hook in hooks:
                hook.on_forward(task)
            local = loss([g, f], target)
            task.losses.append(float(all_reduce_mean(local.detach().clone())))  # as VISSL does
            for hook in hooks:
                hook.on_loss_and_meter(task)
            local.backward()
            task.iteration += 1
            for hook in hooks:
                hook.on_update(task)
            for hook in hooks:
                hook.on_step(task)
        for hook in hooks:
            hook.on_phase_end(task)
        outcome = "finished"
    except Exception as error:  # the outcome is what the test checks
        outcome = f"{type(error).__name__}: {error}"
    Path(f"{out}{rank}").write_text(outcome)
    dist.destroy_process_group()


@pytest.mark.parametrize("check_period", [1, 4])
@pytest.mark.parametrize("fault, error, what", [
    ("nan", "FloatingPointError", r"Non-finite model output \(8 values\)"),
    ("index", "IndexError", "Dataset index 64 is outside the memory bank"),
])
def test_a_failure_on_one_rank_stops_both_with_the_same_message(tmp_path, fault, error, what,
                                                                 check_period):
    out = str(tmp_path / "outcome")
    context = mp.start_processes(train_steps, nprocs=2, join=False, start_method="spawn",
                                 args=(str(tmp_path / "init"), fault, check_period, out))
    deadline = time.monotonic() + TIMEOUT_S
    for process in context.processes:
        process.join(max(0.0, deadline - time.monotonic()))
    hung = [rank for rank, process in enumerate(context.processes) if process.is_alive()]
    for rank in hung:
        context.processes[rank].kill()
    assert not hung, f"ranks {hung} still waiting after {TIMEOUT_S} s"
    outcomes = [Path(f"{out}{rank}").read_text() for rank in (0, 1)]
    assert outcomes[0] == outcomes[1]
    # caught at the step itself, or at the next agreement
    assert re.match(rf"{error}: {what} at training step \d on rank 1\. Every rank stops",
                    outcomes[0]), outcomes[0]

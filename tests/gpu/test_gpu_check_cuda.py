"""What only CUDA shows at unit level (``pytest -m gpu``; skipped without CUDA by the ``gpu``
marker, tests/conftest.py). The kit's stage ``gpu_tests`` (benchmarks/gpu_lease.py) runs these;
its other stages (benchmarks/gpu_check.py) run the trainings, which are not repeated here."""
from types import SimpleNamespace

import pytest
import torch

from vissl_pirl_plugin.hooks.memory_bank_hook import MemoryBankUpdateHook
from vissl_pirl_plugin.hooks.non_finite_guard_hook import NonFiniteGuardHook
from vissl_pirl_plugin.losses.pirl_loss import PIRLLoss

pytestmark = pytest.mark.gpu
CUDA = torch.device("cuda")


def step(loss, guard, bank_hook, iteration: int, target: torch.Tensor,
         output_value: float = 0.0) -> None:
    g = torch.randn(4, 8, device=CUDA, requires_grad=True)
    f = (torch.randn(4, 8, device=CUDA) + output_value).requires_grad_()
    task = SimpleNamespace(base_loss=loss, train=True, losses=[], iteration=iteration,
                           config={"CHECKPOINT": {"CHECKPOINT_ITER_FREQUENCY": 0,
                                                  "CHECKPOINT_FREQUENCY": 100}},
                           phase_idx=0, train_phase_idx=0, num_train_phases=2,
                           last_batch=SimpleNamespace(model_output=[g, f], target=target))
    guard.on_forward(task)
    loss([g, f], target).backward()
    guard.on_loss_and_meter(task)
    bank_hook.on_update(task)


@pytest.mark.parametrize("sampling", ["per_sample", "shared"])
def test_the_step_makes_no_host_sync_with_the_guard_checking_every_step(sampling):
    """Loss forward/backward, bank update, the guard at check_period 1 (its agreement read a
    step later from pinned memory), under set_sync_debug_mode("error"), after the first step
    (which reads once whether Z is known)."""
    loss = PIRLLoss(num_train_samples=100, num_negatives=16, embedding_dim=8,
                    negative_sampling=sampling).to(CUDA)
    guard, bank_hook = NonFiniteGuardHook(check_period=1), MemoryBankUpdateHook()
    target = torch.tensor([1, -1, 7, 1], device=CUDA)  # a failed image and a repeat
    step(loss, guard, bank_hook, 0, target)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for iteration in range(1, 5):
            step(loss, guard, bank_hook, iteration, target)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert guard.pending is not None and guard.pending.table.is_pinned()


def test_a_nan_on_the_device_stops_the_next_step_naming_its_own():
    loss = PIRLLoss(num_train_samples=100, num_negatives=16, embedding_dim=8).to(CUDA)
    guard, bank_hook = NonFiniteGuardHook(check_period=1), MemoryBankUpdateHook()
    target = torch.tensor([1, -1, 7, 1], device=CUDA)
    step(loss, guard, bank_hook, 0, target)
    step(loss, guard, bank_hook, 1, target, output_value=float("nan"))
    with pytest.raises(FloatingPointError, match="Non-finite .* at training step 1"):
        step(loss, guard, bank_hook, 2, target)

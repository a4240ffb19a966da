"""The training step makes no host read (issue 20): CI's stand-in for CUDA's sync check.

``HostReadDetector`` sees on the CPU what ``torch.cuda.set_sync_debug_mode("error")`` stops
on a GPU. The per-step path of the plugin (the guard's and the bank hook's ``on_forward``,
``on_loss_and_meter``, ``on_update`` and ``on_step``, the loss forward and backward and the
bank update, driven by the kit's ``gpu_check.hooked_step``) runs several steps under it, after the first step, which estimates Z and reads
once whether it is known. The only reads allowed are of values that live on the host anyway:
``finish_agreement`` reads the agreed failure table from pinned host memory, a step after
it was copied there.
"""
import sys
from types import SimpleNamespace

import pytest
import torch

from conftest import REPO
from vissl_pirl_plugin.hooks.memory_bank_hook import MemoryBankUpdateHook
from vissl_pirl_plugin.hooks.non_finite_guard_hook import NonFiniteGuardHook
from vissl_pirl_plugin.utils.host_reads import HOST_RESIDENT_READS, HostReadDetector
from vissl_pirl_plugin.losses.pirl_loss import PIRLLoss

sys.path.insert(0, str(REPO / "benchmarks"))
import gpu_check  # noqa: E402 - the kit's step driver: the same path the kit checks on CUDA


def run_steps(loss: PIRLLoss, steps: range, batch: int = 6, dim: int = 8) -> None:
    guard, bank_hook = NonFiniteGuardHook(check_period=1), MemoryBankUpdateHook()
    for iteration in steps:
        g = torch.randn(batch, dim, requires_grad=True)
        f = torch.randn(batch, dim, requires_grad=True)
        target = torch.randint(0, loss.memory_bank.num_entries, (batch,))
        target[1] = loss.ignore_index  # a failed image, masked out
        gpu_check.hooked_step(loss, guard, bank_hook, SimpleNamespace(
            base_loss=loss, train=True, losses=[1.5], iteration=iteration, phase_idx=0,
            train_phase_idx=0, num_train_phases=2, config=gpu_check.NO_CHECKPOINT_STEPS,
            last_batch=SimpleNamespace(model_output=[g, f], target=target, loss=None)))


@pytest.mark.parametrize("loss_type", ["nce", "infonce"])
@pytest.mark.parametrize("sampling", ["per_sample", "shared"])
@pytest.mark.parametrize("lambda_weight", [0.5, 0.0])
def test_the_per_step_path_reads_nothing_from_the_device(loss_type, sampling, lambda_weight):
    torch.manual_seed(0)
    loss = PIRLLoss(num_train_samples=200, num_negatives=16, embedding_dim=8,
                    loss_type=loss_type, negative_sampling=sampling, lambda_weight=lambda_weight)
    run_steps(loss, range(0, 1))  # estimates Z and reads whether it is known: once per run
    with HostReadDetector(allowed=HOST_RESIDENT_READS) as detector:
        run_steps(loss, range(1, 5))
    assert detector.reads == []
    assert detector.allowed_reads, "the deferred agreement was never read"


def test_an_index_outside_the_bank_is_still_read_only_from_host_memory():
    torch.manual_seed(0)
    loss = PIRLLoss(num_train_samples=50, num_negatives=4, embedding_dim=8)
    run_steps(loss, range(0, 1))
    bad = torch.tensor([3, 70])
    with HostReadDetector(allowed=HOST_RESIDENT_READS) as detector:
        loss([torch.randn(2, 8), torch.randn(2, 8)], bad)
        loss.memory_bank.update(torch.nn.functional.normalize(torch.randn(2, 8)), bad)
    assert detector.reads == []


@pytest.mark.parametrize("read, what", [
    (lambda t, i: t[i.argmax()], "_local_scalar_dense"),  # a 0-d tensor index is read
    (lambda t, i: t.tolist(), "tolist"),
    (lambda t, i: t[t > 0], "boolean mask"),
    (lambda t, i: torch.unique(i), "unique"),
    (lambda t, i: bool(t.sum() > 0), "__bool__"),
    (lambda t, i: t.nonzero(), "nonzero"),
    (lambda t, i: t.cpu(), "cpu"),
    (lambda t, i: torch.equal(t, t), "equal"),
])
def test_the_detector_sees_each_kind_of_host_read(monkeypatch, read, what):
    """A plugin function that reads a device value is reported with its place."""
    from vissl_pirl_plugin.losses import negative_sampling

    original = negative_sampling._check_sizes

    def reading_check(dataset_size, num_negatives, excluded):
        read(torch.randn(5), torch.arange(5))
        return original(dataset_size, num_negatives, excluded)

    monkeypatch.setattr(negative_sampling, "_check_sizes", reading_check)
    with HostReadDetector() as detector:
        negative_sampling.sample_per_sample_negatives(torch.tensor([1, 2]), 10, 3)
    assert len(detector.reads) >= 1 and what in detector.reads[0], detector.reads
    assert ("in sample_per_sample_negatives at vissl_pirl_plugin/losses/negative_sampling.py:"
            in detector.reads[0])


def test_a_failure_stops_the_guard_at_the_next_check_naming_its_step():
    """The agreement of step k is read at step k + 1's check (or a checkpoint, the epoch's end,
    the run's end): the step itself does not wait for it."""
    torch.manual_seed(0)
    loss = PIRLLoss(num_train_samples=50, num_negatives=4, embedding_dim=8, norm_constant=2.0)
    guard = NonFiniteGuardHook(check_period=1)

    def forward(iteration: int, value: float) -> SimpleNamespace:
        task = SimpleNamespace(base_loss=loss, iteration=iteration, train=True, losses=[],
                               config=gpu_check.NO_CHECKPOINT_STEPS,
                               last_batch=SimpleNamespace(model_output=[torch.full((2, 8), value)]))
        guard.on_forward(task)
        guard.on_loss_and_meter(task)
        return task

    forward(1, 0.0)
    forward(2, float("nan"))  # recorded and agreed on, not yet read
    with pytest.raises(FloatingPointError, match=r"Non-finite model output \(16 values\) at "
                                                 "training step 2 on rank 0"):
        forward(3, 0.0)
    task = forward(4, float("nan"))
    with pytest.raises(FloatingPointError, match="at training step 4"):
        guard.on_phase_end(task)  # the epoch's end reads it at once
    forward(5, float("nan"))
    with pytest.raises(FloatingPointError, match="at training step 5"):
        guard.on_end(task)  # and so does the run's end: nothing is left unread


def test_a_failure_the_loss_records_is_named_with_its_own_step():
    """An index outside the bank is recorded by the loss, after the output's check: the
    agreement starts after the loss, so it names the step it happened at."""
    torch.manual_seed(0)
    loss = PIRLLoss(num_train_samples=50, num_negatives=4, embedding_dim=8, norm_constant=2.0)
    guard = NonFiniteGuardHook(check_period=1)
    for iteration, bad in ((1, False), (2, True), (3, False)):
        target = torch.tensor([3, 70 if bad else 4])
        task = SimpleNamespace(base_loss=loss, iteration=iteration, train=True, losses=[],
                               last_batch=SimpleNamespace(model_output=[torch.zeros(2, 8)]))
        guard.on_forward(task)
        loss([torch.randn(2, 8), torch.randn(2, 8)], target)
        if iteration == 3:
            with pytest.raises(IndexError, match="index 70 is outside the memory bank at "
                                                 "training step 2"):
                guard.on_loss_and_meter(task)
        else:
            guard.on_loss_and_meter(task)

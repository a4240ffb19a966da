"""MemoryBankUpdateHook on a stand-in task (single process)."""
import logging
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from vissl_pirl_plugin.hooks import memory_bank_hook
from vissl_pirl_plugin.hooks.memory_bank_hook import MemoryBankUpdateHook, bank_checksum
from vissl_pirl_plugin.losses.pirl_loss import PIRLLoss


def make_task(loss, model_output, target, train=True):
    return SimpleNamespace(base_loss=loss, train=train, iteration=0,
                           last_batch=SimpleNamespace(model_output=model_output, target=target))


def test_updates_with_f_of_untransformed_images_only():
    loss = PIRLLoss(num_train_samples=10, num_negatives=3, embedding_dim=4, momentum=0.5)
    before = loss.memory_bank.embeddings.clone()
    g, f = torch.randn(3, 4), torch.randn(3, 4)
    MemoryBankUpdateHook().on_update(make_task(loss, [g, f], torch.tensor([2, 5, 9])))
    for row, index in enumerate([2, 5, 9]):
        expected = F.normalize(0.5 * before[index] + 0.5 * F.normalize(f[row], dim=0), dim=0)
        assert torch.allclose(loss.memory_bank.embeddings[index], expected, atol=1e-6)


def test_placeholders_of_failed_images_never_enter_the_bank():
    loss = PIRLLoss(num_train_samples=10, num_negatives=3, embedding_dim=4)
    before = loss.memory_bank.embeddings.clone()
    f = torch.randn(3, 4)
    # pirl_collator labels a failed image with ignore_index (-1)
    MemoryBankUpdateHook().on_update(make_task(loss, [torch.randn(3, 4), f],
                                               torch.tensor([1, -1, 4])))
    changed = (loss.memory_bank.embeddings != before).any(dim=1).nonzero().view(-1).tolist()
    assert changed == [1, 4]


def test_no_update_outside_training_and_wrong_loss_is_reported():
    loss = PIRLLoss(num_train_samples=10, num_negatives=3, embedding_dim=4)
    before = loss.memory_bank.embeddings.clone()
    hook = MemoryBankUpdateHook()
    hook.on_update(make_task(loss, [torch.randn(1, 4)] * 2, torch.tensor([0]), train=False))
    assert torch.equal(loss.memory_bank.embeddings, before)
    with pytest.raises(TypeError, match="LOSS.name=pirl_loss"):
        hook.on_update(make_task(torch.nn.CrossEntropyLoss(), [], torch.tensor([0])))


def test_checksum_in_chunks_equals_the_whole_bank_sum_and_catches_swapped_rows(monkeypatch):
    bank = torch.randn(1000, 16)
    flat = bank.reshape(-1).double()
    weights = torch.arange(1, flat.numel() + 1, dtype=torch.float64)
    whole = torch.stack([flat.sum(), (flat * weights).sum() / flat.numel()])
    monkeypatch.setattr(memory_bank_hook, "CHECKSUM_CHUNK_ROWS", 64)
    chunked = bank_checksum(bank)
    assert torch.allclose(chunked, whole, rtol=1e-12)
    swapped = bank[[1, 0, *range(2, 1000)]]
    assert bank_checksum(swapped)[0] == pytest.approx(float(chunked[0]), rel=1e-12)
    assert bank_checksum(swapped)[1] != chunked[1]


@pytest.mark.parametrize("iter_frequency, epoch_frequency, steps, gathers", [
    (0, 10, [1, 2, 3], 0),   # neither a step nor this epoch (1 of 0-4) is checkpointed
    (2, 10, [1, 2, 3, 4], 2),
    (0, 1, [1, 2], 1),       # the epoch end is
])
def test_sharded_bank_is_gathered_only_when_vissl_writes_a_checkpoint(
        monkeypatch, iter_frequency, epoch_frequency, steps, gathers):
    loss = PIRLLoss(num_train_samples=10, num_negatives=3, embedding_dim=4)
    calls = []
    monkeypatch.setattr(loss.memory_bank, "gather_for_checkpoint", lambda: calls.append(1))
    task = SimpleNamespace(base_loss=loss, train=True, train_phase_idx=1, num_train_phases=5,
                           config={"CHECKPOINT": {"CHECKPOINT_ITER_FREQUENCY": iter_frequency,
                                                  "CHECKPOINT_FREQUENCY": epoch_frequency}})
    hook = MemoryBankUpdateHook()
    for step in steps:
        task.iteration = step
        hook.on_step(task)
    hook.on_phase_end(task)
    assert len(calls) == gathers


def test_the_log_says_what_the_bank_does(caplog):
    """One line at the first update, one per training epoch (rows written so far out of |D|,
    their mean norm), and on resume the rows the checkpoint restored."""
    caplog.set_level(logging.INFO)
    loss = PIRLLoss(num_train_samples=10, num_negatives=3, embedding_dim=4)
    hook = MemoryBankUpdateHook()
    for iteration, target in enumerate(([2, 5, -1], [5, 7, 7])):
        task = make_task(loss, [torch.randn(3, 4)] * 2, torch.tensor(target))
        task.iteration, task.train_phase_idx, task.num_train_phases = iteration, 0, 2
        task.config = {"CHECKPOINT": {"CHECKPOINT_ITER_FREQUENCY": 0, "CHECKPOINT_FREQUENCY": 1}}
        hook.on_update(task)
    hook.on_phase_end(task)
    hook.on_phase_end(SimpleNamespace(**{**vars(task), "train": False}))  # a test phase: quiet
    assert [r.getMessage() for r in caplog.records] == [
        "Memory bank: first update at training step 0, 3 entries of the global batch written into "
        "the bank of 10 rows (float32, replicated on every rank).",
        "Memory bank after epoch 0: 3 of 10 rows written (30.0%), mean norm 1.0000."]
    caplog.clear()
    resumed = PIRLLoss(num_train_samples=10, num_negatives=3, embedding_dim=4)
    resumed.load_state_dict(loss.state_dict())
    hook = MemoryBankUpdateHook()
    hook.on_start(make_task(resumed, [], torch.tensor([])))
    task.base_loss, task.train_phase_idx = resumed, 1
    hook.on_phase_end(task)
    assert [r.getMessage() for r in caplog.records] == [
        "Memory bank: restored from the checkpoint, 3 of 10 rows written before it (the others "
        "still hold their random start).",
        "Memory bank after epoch 1: 3 of 10 rows written (30.0%), mean norm 1.0000; 3 restored "
        "from the checkpoint."]

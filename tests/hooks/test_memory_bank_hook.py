"""MemoryBankUpdateHook on a stand-in task (single process)."""
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from vissl_pirl_plugin.hooks.memory_bank_hook import MemoryBankUpdateHook
from vissl_pirl_plugin.losses.pirl_loss import PIRLLoss


def make_task(loss, model_output, target, train=True):
    return SimpleNamespace(base_loss=loss, train=train,
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

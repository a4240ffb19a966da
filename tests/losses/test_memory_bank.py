"""The memory bank's EMA update, renormalisation and index checks (paper §2.2)."""
import pytest
import torch
import torch.nn.functional as F

from vissl_pirl_plugin.losses.memory_bank import MemoryBank, first_occurrences


def test_initial_entries_are_unit_norm_and_seeded():
    bank = MemoryBank(20, 8, init_seed=3)
    assert torch.allclose(bank.embeddings.norm(dim=1), torch.ones(20))
    assert torch.equal(bank.embeddings, MemoryBank(20, 8, init_seed=3).embeddings)
    assert not torch.equal(bank.embeddings, MemoryBank(20, 8, init_seed=4).embeddings)


def test_ema_update_and_renormalisation():
    bank = MemoryBank(10, 4, momentum=0.5)
    before = bank.embeddings.clone()
    new = F.normalize(torch.randn(2, 4), dim=1)
    bank.update(new, torch.tensor([7, 2]))
    for row, index in enumerate([7, 2]):
        mixed = 0.5 * before[index] + 0.5 * new[row]
        assert torch.allclose(bank.embeddings[index], mixed / mixed.norm(), atol=1e-6)
    untouched = [i for i in range(10) if i not in (7, 2)]
    assert torch.equal(bank.embeddings[untouched], before[untouched])


def test_momentum_weights_the_old_entry():
    bank = MemoryBank(4, 3, momentum=0.9)
    old = bank.embeddings[1].clone()
    new = F.normalize(torch.tensor([[1.0, 0.0, 0.0]]), dim=1)
    bank.update(new, torch.tensor([1]))
    expected = F.normalize(0.9 * old + 0.1 * new[0], dim=0)
    assert torch.allclose(bank.embeddings[1], expected, atol=1e-6)


def test_repeated_index_uses_first_occurrence():
    bank = MemoryBank(5, 3, momentum=0.0)
    new = F.normalize(torch.randn(3, 3), dim=1)
    bank.update(new, torch.tensor([2, 4, 2]))
    assert torch.allclose(bank.embeddings[2], new[0], atol=1e-6)
    assert torch.equal(first_occurrences(torch.tensor([5, 1, 5, 1, 3])), torch.tensor([1, 4, 0]))


def test_update_rejects_bad_indices_and_dims():
    bank = MemoryBank(5, 3)
    with pytest.raises(IndexError, match="Dataset index 5 is outside the memory bank"):
        bank.update(torch.zeros(1, 3), torch.tensor([5]))
    with pytest.raises(ValueError, match="embedding_dim 3"):
        bank.update(torch.zeros(1, 4), torch.tensor([0]))


def test_bad_bank_settings():
    with pytest.raises(ValueError, match="momentum"):
        MemoryBank(5, 3, momentum=1.0)
    with pytest.raises(ValueError, match="at least 2 entries"):
        MemoryBank(1, 3)


def test_float16_storage_halves_memory_and_stays_close_to_float32():
    """fp16 storage, fp32 maths: after 50 EMA updates the banks agree to 2e-3 per entry."""
    full, half = MemoryBank(64, 16, init_seed=1), MemoryBank(64, 16, init_seed=1, dtype="float16")
    assert half.embeddings.dtype == torch.float16
    assert half.embeddings.element_size() * 2 == full.embeddings.element_size()
    assert half.lookup(torch.tensor([0, 1])).dtype == torch.float32
    torch.manual_seed(0)
    for _ in range(50):
        indices = torch.randint(0, 64, (8,))
        new = F.normalize(torch.randn(8, 16), dim=1)
        full.update(new, indices)
        half.update(new, indices)
    assert (full.embeddings - half.embeddings.float()).abs().max() < 2e-3
    with pytest.raises(ValueError, match="memory_bank.dtype='bfloat8'"):
        MemoryBank(4, 2, dtype="bfloat8")

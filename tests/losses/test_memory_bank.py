"""The memory bank's EMA update, renormalisation and index checks (paper §2.2)."""
import math

import pytest
import torch
import torch.nn.functional as F

from vissl_pirl_plugin.utils.distributed_checks import agree_on_failures
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
    assert torch.equal(first_occurrences(torch.tensor([5, 1, 5, 1, 3])),
                       torch.tensor([0, 1, 0, 1, 4]))


def test_update_rejects_bad_indices_and_dims():
    bank = MemoryBank(5, 3)
    before = bank.embeddings.clone()
    bank.update(torch.zeros(2, 3), torch.tensor([5, -2]))
    assert torch.equal(bank.embeddings, before)  # nothing written out of range
    agree_on_failures(bank.failures, step=0)  # the loss reports them, on the rank that owns them
    assert bank.check_indices(torch.tensor([3, 5, -2])).tolist() == [True, False, False]
    with pytest.raises(IndexError, match="Dataset index 5 is outside the memory bank"):
        agree_on_failures(bank.failures, step=0)
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


def test_update_masks_left_out_entries_and_repeats_without_host_syncs():
    """Masks replace boolean indexing and torch.unique: same rows written as before."""
    bank = MemoryBank(6, 3, momentum=0.0)
    before = bank.embeddings.clone()
    new = F.normalize(torch.randn(5, 3), dim=1)
    bank.update(new, torch.tensor([4, 1, 4, 2, 1]), keep=torch.tensor([True, False, True, True,
                                                                        True]))
    assert torch.allclose(bank.embeddings[4], new[0], atol=1e-6)  # first occurrence of 4
    assert torch.allclose(bank.embeddings[1], new[4], atol=1e-6)  # first kept occurrence of 1
    assert torch.allclose(bank.embeddings[2], new[3], atol=1e-6)
    assert torch.equal(bank.embeddings[[0, 3, 5]], before[[0, 3, 5]])


def test_a_shard_holding_none_of_the_indices_is_unchanged():
    shard = MemoryBank(100, 4, num_shards=2, shard_index=1)
    before = shard.embeddings.clone()
    shard.update(F.normalize(torch.randn(3, 4), dim=1), torch.tensor([3, 49, 0]))
    assert torch.equal(shard.embeddings, before)


def test_first_occurrences_match_a_direct_search():
    values = torch.randint(0, 7, (200,))
    expected = [values.tolist().index(v) for v in values.tolist()]
    assert first_occurrences(values).tolist() == expected


def test_vissl_rank_mean_starts_the_bank_as_vissl_does_with_several_ranks():
    """VISSL 0.1.6 averages every rank's own random unit rows on the first forward, without
    renormalising: rows of norm about 1/sqrt(world) (0.707 at 2 ranks, 0.177 at 32)."""
    for world, norm in ((2, 0.707), (32, 0.177)):
        bank = MemoryBank(2000, 128, init="vissl_rank_mean", world_size=world)
        assert bank.embeddings.norm(dim=1).mean() == pytest.approx(norm, rel=0.03)
        # the same on every rank, without communication, and rank 0's unit rows are a part
        again = MemoryBank(2000, 128, init="vissl_rank_mean", world_size=world)
        assert torch.equal(bank.embeddings, again.embeddings)
    assert torch.equal(MemoryBank(100, 8, init="vissl_rank_mean", world_size=1).embeddings,
                       MemoryBank(100, 8).embeddings)  # one rank: VISSL's is the unit bank


@pytest.mark.parametrize("init, world", [("unit", 2), ("vissl_rank_mean", 2),
                                         ("vissl_rank_mean", 32)])
def test_vissl_rank_mean_makes_the_first_batch_estimate_vissls_z(init, world):
    """Z/|D| = mean(exp(s/tau)) on the first batch. A random query's cosine with a random row
    of norm r in 128-d is about N(0, r^2/128), so Z/|D| = exp(r^2 / (2 * 128 * tau^2)): 2.22
    for unit rows, 1.49 for VISSL's at 2 ranks, 1.025 at 32 (measured with VISSL's code: 2.326,
    1.506 and 1.025)."""
    from vissl_pirl_plugin.losses.pirl_loss import PIRLLoss

    torch.manual_seed(0)
    loss = PIRLLoss(num_train_samples=5000, num_negatives=1000, embedding_dim=128)
    loss.memory_bank = MemoryBank(5000, 128, init=init, world_size=world)
    loss([torch.randn(32, 128), torch.randn(32, 128)], torch.arange(32))
    squared_norm = 1.0 if init == "unit" else 1.0 / world
    expected = math.exp(squared_norm / (2 * 128 * 0.07 ** 2))
    assert loss.norm_constant / 5000 == pytest.approx(expected, rel=0.04)


def test_an_unknown_bank_init_names_the_choices():
    with pytest.raises(ValueError, match=r"memory_bank.init='npid': use one of \('unit', "
                                         r"'vissl_rank_mean'\)"):
        MemoryBank(10, 4, init="npid")


def test_written_rows_counts_each_row_once_and_never_a_left_out_entry():
    """The rows written so far, for the log: failed images (keep false), indices outside the
    bank and the row an entry left out rewrites (row 0 when nothing is kept) are not written."""
    bank = MemoryBank(10, 4, momentum=0.5)
    assert bank.written_rows() == (0, pytest.approx(1.0))
    new = F.normalize(torch.randn(4, 4), dim=1)
    bank.update(new, torch.tensor([3, 3, 12, 5]), keep=torch.tensor([True, True, True, False]))
    assert bank.written.nonzero().view(-1).tolist() == [3]
    bank.update(new[:2], torch.tensor([0, 0]), keep=torch.tensor([False, False]))
    assert bank.written.nonzero().view(-1).tolist() == [3]
    bank.update(new[:2], torch.tensor([7, 3]))
    written, mean_norm = bank.written_rows()
    assert written == 2 and mean_norm == pytest.approx(1.0, abs=1e-6)
    bank.embeddings[:5] *= 0.5
    assert bank.written_rows()[1] == pytest.approx(0.75, abs=1e-6)


@pytest.mark.parametrize("shards", [1, 2])
def test_written_rows_are_checkpointed_and_counted_as_restored(shards):
    whole = MemoryBank(10, 4)
    whole.update(F.normalize(torch.randn(3, 4), dim=1), torch.tensor([1, 6, 8]))
    state = whole.state_dict()
    assert state["written"].tolist() == [0, 1, 0, 0, 0, 0, 1, 0, 1, 0]
    fresh = MemoryBank(10, 4, num_shards=shards, shard_index=shards - 1)
    assert fresh.restored_rows is None
    fresh.load_state_dict({name: value.clone() for name, value in state.items()})
    assert fresh.restored_rows == 3
    assert torch.equal(fresh.written, state["written"][fresh.start:fresh.end])


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_a_checkpoint_without_written_rows_counts_the_rows_moved_from_the_start(dtype):
    """Checkpoints written before the bank recorded its written rows still load (VISSL loads
    the loss strictly); a row counts as written where it differs from its random start."""
    trained = MemoryBank(5000, 4, init_seed=2, dtype=dtype)
    trained.update(F.normalize(torch.randn(3, 4), dim=1), torch.tensor([0, 4095, 4999]))
    old_checkpoint = {"embeddings": trained.embeddings.clone()}
    resumed = MemoryBank(5000, 4, init_seed=2, dtype=dtype)
    resumed.load_state_dict(old_checkpoint)
    assert resumed.restored_rows == 3
    assert resumed.written.nonzero().view(-1).tolist() == [0, 4095, 4999]

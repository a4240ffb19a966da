"""The weighted kNN vote on the memory bank (NPID §3.4): against a direct computation, chunked,
and the sharded top-K merge across two gloo processes."""
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

from vissl_pirl_plugin.losses.knn_classifier import (
    bank_top_k,
    memory_bank_top_k,
    top_k_accuracy,
    weighted_vote,
)
from vissl_pirl_plugin.losses.memory_bank import MemoryBank


def direct_votes(queries, bank, labels, num_classes, k, temperature):
    """NPID's classifier written out one query at a time."""
    votes = torch.zeros(len(queries), num_classes, dtype=torch.float64)
    for q, query in enumerate(queries):
        similarities = [float(query @ row) for row in bank]
        nearest = sorted(range(len(bank)), key=lambda i: -similarities[i])[:k]
        for i in nearest:
            votes[q, labels[i]] += torch.tensor(similarities[i] / temperature).double().exp()
    return votes


def test_vote_matches_a_direct_computation():
    generator = torch.Generator().manual_seed(0)
    bank = F.normalize(torch.randn(40, 8, generator=generator), dim=1)
    queries = F.normalize(torch.randn(6, 8, generator=generator), dim=1)
    labels = torch.randint(0, 4, (40,), generator=generator)
    similarities, indices = bank_top_k(queries, bank, k=7, chunk_rows=9)
    votes = weighted_vote(similarities, labels[indices], 4, temperature=0.1)
    assert torch.allclose(votes, direct_votes(queries, bank, labels, 4, 7, 0.1), rtol=1e-5)
    whole = bank_top_k(queries, bank, k=7)
    assert torch.equal(whole[1], indices)


def test_top_k_accuracy_counts_the_target_among_the_best_classes():
    votes = torch.tensor([[3.0, 2.0, 1.0], [1.0, 3.0, 2.0], [1.0, 2.0, 3.0]])
    accuracy = top_k_accuracy(votes, torch.tensor([0, 2, 0]), ks=(1, 2))
    assert accuracy == {1: 1 / 3, 2: 2 / 3}


def test_k_larger_than_the_bank_keeps_every_row():
    bank = F.normalize(torch.randn(3, 4), dim=1)
    similarities, indices = bank_top_k(bank, bank, k=200)
    assert indices.shape == (3, 3) and torch.equal(indices[:, 0], torch.arange(3))


QUERIES = {0: F.normalize(torch.randn(5, 6, generator=torch.Generator().manual_seed(1)), dim=1),
           1: F.normalize(torch.randn(2, 6, generator=torch.Generator().manual_seed(2)), dim=1)}


def search_in_two_ranks(rank: int, init_file: str, num_entries: int, k: int, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    results = {}
    for shards in (1, 2):
        bank = MemoryBank(num_entries, 6, init_seed=4, num_shards=shards,
                          shard_index=rank if shards == 2 else 0)
        results[shards] = memory_bank_top_k(QUERIES[rank], bank, k)
    torch.save(results, f"{out}{rank}.pt")
    dist.destroy_process_group()


def test_sharded_top_k_merge_equals_the_whole_banks_top_k_on_every_rank(tmp_path):
    """Two gloo processes with uneven query counts; a bank with fewer rows per shard than k."""
    for num_entries, k in ((101, 10), (9, 8)):
        out = str(tmp_path / f"top{num_entries}_")
        mp.spawn(search_in_two_ranks, args=(str(tmp_path / f"init{num_entries}"), num_entries, k,
                                            out), nprocs=2)
        whole = MemoryBank(num_entries, 6, init_seed=4).embeddings
        expected = bank_top_k(torch.cat([QUERIES[0], QUERIES[1]]), whole, k)
        for rank in (0, 1):
            for shards, (similarities, indices) in torch.load(f"{out}{rank}.pt").items():
                assert torch.equal(indices, expected[1]), (num_entries, rank, shards)
                assert torch.allclose(similarities, expected[0], atol=1e-6)

"""Weighted k-nearest-neighbour classification against the memory bank (NPID §3.4).

Wu et al. 2018 ("Unsupervised Feature Learning via Non-Parametric Instance
Discrimination", §3.4), whose memory bank PIRL uses (paper §2.2), classify a test
image by its ``k`` most similar bank entries ``m_i`` (cosine similarity
``s_i = m_i . f(x)`` of unit vectors), each voting for its training class with
weight ``exp(s_i / tau)``; the class with the largest total wins.

The tensor logic here is pure: ``bank_top_k`` (the similarity + top-K step, in
chunks of bank rows), ``merge_top_k`` (the top-K of several shards' top-Ks),
``weighted_vote`` and ``top_k_accuracy``. ``memory_bank_top_k`` is the one
collective: queries of every rank against a replicated or sharded ``MemoryBank``,
the same merged neighbours returned on every rank.
"""
from typing import Dict, List, Sequence, Tuple

import torch
import torch.distributed as dist

from vissl_pirl_plugin.losses.memory_bank import MemoryBank

# bank rows scored at once: bounds the (queries x rows) similarity block
BANK_CHUNK_ROWS = 65536
Neighbours = Tuple[torch.Tensor, torch.Tensor]  # (similarities, global bank indices), (Q, K)


def bank_top_k(queries: torch.Tensor, rows: torch.Tensor, k: int, row_offset: int = 0,
               chunk_rows: int = BANK_CHUNK_ROWS) -> Neighbours:
    """The ``min(k, len(rows))`` most similar rows of each query, best first.

    ``queries`` (Q, D) and ``rows`` (R, D) are unit vectors; the returned indices are
    ``row_offset`` + the row's position (a shard's first global index).
    """
    if k < 1:
        raise ValueError(f"k={k} must be >= 1.")
    keep = min(k, rows.shape[0])
    best = (queries.new_empty(queries.shape[0], 0),
            torch.empty(queries.shape[0], 0, dtype=torch.long, device=queries.device))
    for start in range(0, rows.shape[0], chunk_rows):
        block = rows[start:start + chunk_rows].to(queries.dtype)
        scores, positions = (queries @ block.t()).topk(min(keep, block.shape[0]), dim=1)
        best = merge_top_k([best, (scores, positions + row_offset + start)], keep)
    return best


def merge_top_k(parts: Sequence[Neighbours], k: int) -> Neighbours:
    """The ``k`` best of the union of several top-K lists (e.g. one per shard), best first."""
    scores = torch.cat([part[0] for part in parts], dim=1)
    indices = torch.cat([part[1] for part in parts], dim=1)
    best, positions = scores.topk(min(k, scores.shape[1]), dim=1)
    return best, indices.gather(1, positions)


def weighted_vote(similarities: torch.Tensor, neighbour_labels: torch.Tensor,
                  num_classes: int, temperature: float) -> torch.Tensor:
    """Per-class votes (Q, C): the sum of ``exp(s_i / tau)`` over the neighbours of each class."""
    if not temperature > 0:
        raise ValueError(f"temperature={temperature} must be > 0 (0.07 in NPID).")
    weights = (similarities.double() / temperature).exp()
    votes = weights.new_zeros(similarities.shape[0], num_classes)
    return votes.scatter_add_(1, neighbour_labels, weights)


def top_k_accuracy(votes: torch.Tensor, targets: torch.Tensor,
                   ks: Sequence[int] = (1, 5)) -> Dict[int, float]:
    """Fraction of rows whose target is among the ``k`` classes with the most votes, per k."""
    if targets.numel() == 0:
        raise ValueError("No validation images to score.")
    ranked = votes.argsort(dim=1, descending=True, stable=True)
    hits = ranked == targets.view(-1, 1)
    return {k: float(hits[:, :k].any(dim=1).double().mean()) for k in ks}


def gather_rows(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenation, in rank order, of every rank's ``tensor`` (any number of rows); collective."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return tensor
    count = torch.tensor([tensor.shape[0]], device=tensor.device)
    counts = [torch.empty_like(count) for _ in range(dist.get_world_size())]
    dist.all_gather(counts, count)
    sizes: List[int] = [int(c) for c in counts]
    padded = tensor.new_zeros(max(sizes), *tensor.shape[1:])
    padded[:tensor.shape[0]] = tensor
    parts = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(parts, padded.contiguous())
    return torch.cat([part[:size] for part, size in zip(parts, sizes)])


def memory_bank_top_k(queries: torch.Tensor, bank: MemoryBank, k: int) -> Neighbours:
    """Neighbours in the whole bank of every rank's queries, in rank order, on every rank.

    Each rank passes the queries it embedded. Replicated bank: each rank searches its
    own queries and the results are gathered. Sharded bank: the queries are gathered,
    each rank searches its shard, and the per-shard top-Ks are gathered and merged
    (the top-K of a union is the top-K of its parts' top-Ks). Collective when distributed.
    """
    if not bank.sharded:
        similarities, indices = bank_top_k(queries, bank.embeddings, k)
        return gather_rows(similarities), gather_rows(indices)
    everyone = gather_rows(queries)
    similarities, indices = bank_top_k(everyone, bank.embeddings, k, row_offset=bank.start)
    missing = k - similarities.shape[1]  # a shard of fewer than k rows: pad, so shapes agree
    similarities = torch.cat([similarities, similarities.new_full((everyone.shape[0], missing),
                                                                  float("-inf"))], dim=1)
    indices = torch.cat([indices, indices.new_full((everyone.shape[0], missing), -1)], dim=1)
    shards = zip(gather_rows(similarities.unsqueeze(0)), gather_rows(indices.unsqueeze(0)))
    return merge_top_k(list(shards), min(k, bank.num_entries))

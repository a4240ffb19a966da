"""Scores of queries with negatives held by other ranks' bank shards, without moving rows.

With a sharded bank (``memory_bank.sharded``) and per-sample negatives (the paper's, §2.1),
fetching every image's N rows would move B × N × 128 floats per rank per step. Instead each
rank sends its queries (B × T × D, an all-gather) and one int64 per (image, negative) pair to
the owner of the negative's row; the owner computes the cosine scores ``s = q · m_I'`` and
sends back T floats per pair. The backward pass goes the same way: the score gradients go to
the owners, which return each query's gradient ``sum_j dL/ds_j · m_j``.
"""
from typing import List, Tuple

import torch
import torch.distributed as dist


class ShardedNegativeScores(torch.autograd.Function):
    """``scores[b, t, j] = queries[b, t] · bank[negatives[b, j]]`` over a sharded bank.

    A collective: every rank calls it with its own queries ``(B, T, D)`` and negative
    indices ``(B, N)``; ``bank`` is this rank's ``MemoryBank`` shard.
    """

    @staticmethod
    def forward(ctx, queries: torch.Tensor, negatives: torch.Tensor, bank) -> torch.Tensor:
        batch, terms, dim = queries.shape
        world = bank.num_shards
        flat = negatives.reshape(-1)
        owners = flat // bank.rows_per_shard
        order = torch.argsort(owners, stable=True)
        # one table: what each rank sends to each owner, and each rank's batch size
        counts = torch.cat([torch.bincount(owners, minlength=world),
                            flat.new_tensor([batch])])
        table = [torch.empty_like(counts) for _ in range(world)]
        dist.all_gather(table, counts)
        table = torch.stack(table).tolist()  # the one host read
        rank = dist.get_rank()
        sent = table[rank][:world]
        received = [row[rank] for row in table]
        widest = max(row[world] for row in table)
        # every rank's queries, padded to the widest batch
        padded = queries.new_zeros(widest, terms, dim)
        padded[:batch] = queries
        everyone = [torch.empty_like(padded) for _ in range(world)]
        dist.all_gather(everyone, padded.contiguous())
        everyone = torch.stack(everyone).view(world * widest, terms, dim)
        # each pair is sent as (image * |D| + index); the owner adds the sender's offset
        codes = ((torch.arange(batch, device=flat.device).repeat_interleave(negatives.shape[1])
                  * bank.num_entries) + flat)[order]
        asked = codes.new_empty(sum(received))
        dist.all_to_all_single(asked, codes.contiguous(), received, sent)
        senders = torch.repeat_interleave(torch.arange(world, device=asked.device),
                                          torch.tensor(received, device=asked.device))
        query_ids = senders * widest + asked // bank.num_entries
        rows = asked % bank.num_entries - bank.start
        answers = pair_scores(bank.embeddings[rows].float(), everyone, query_ids)
        scores = answers.new_empty(flat.numel(), terms)
        dist.all_to_all_single(scores, answers, sent, received)
        ctx.bank = bank
        ctx.save_for_backward(order, query_ids, rows)
        ctx.splits: Tuple[List[int], List[int]] = (sent, received)
        ctx.shape = (batch, terms, dim, widest)
        unsorted = torch.empty_like(scores)
        unsorted[order] = scores
        return unsorted.view(batch, negatives.shape[1], terms).transpose(1, 2)

    @staticmethod
    def backward(ctx, grad_scores: torch.Tensor):
        order, query_ids, rows = ctx.saved_tensors
        sent, received = ctx.splits
        batch, terms, dim, widest = ctx.shape
        world = ctx.bank.num_shards
        grad = grad_scores.transpose(1, 2).reshape(-1, terms)[order].contiguous()
        grad_asked = grad.new_empty(sum(received), terms)
        dist.all_to_all_single(grad_asked, grad, received, sent)
        # the bank did not change since the forward pass (it is updated after the step)
        bank_rows = ctx.bank.embeddings[rows].float()
        grad_everyone = grad.new_zeros(world * widest, terms, dim)
        for t in range(terms):
            grad_everyone[:, t].index_add_(0, query_ids, grad_asked[:, t:t + 1] * bank_rows)
        grad_mine = torch.empty_like(grad_everyone)
        dist.all_to_all_single(grad_mine, grad_everyone)
        grad_queries = grad_mine.view(world, widest, terms, dim).sum(dim=0)[:batch]
        return grad_queries, None, None


def pair_scores(rows: torch.Tensor, queries: torch.Tensor, query_ids: torch.Tensor
                ) -> torch.Tensor:
    """``(P, T)`` scores of each row ``(P, D)`` with its query ``queries[query_ids]`` ``(T, D)``."""
    return torch.stack([(rows * queries[query_ids, t]).sum(dim=1)
                        for t in range(queries.shape[1])], dim=1)

"""The memory bank ``M`` of PIRL (paper §2.2).

``M`` holds one representation ``m_I`` per dataset image: an exponential moving
average of the normalised ``f(v_I)`` computed on the *untransformed* image,
renormalised after each update (``m_I <- normalize(w * m_I + (1 - w) * f(v_I))``,
``w = 0.5`` in the paper, following NPID). Negatives ``m_I'`` are read from it.

The bank is a buffer, so it is saved with the loss's ``state_dict`` in VISSL
checkpoints and restored on resume. Two options save memory:

* ``dtype="float16"`` stores it in half precision (ImageNet: 313 MiB instead of
  626 MiB); reads return float32 and the EMA update is computed in float32.
* ``num_shards=W`` (one shard per rank) stores on each rank only its
  ``ceil(|D| / W)`` rows. ``lookup`` is then a collective: every rank calls it
  with its own indices, sends each index to the rank that owns its row and gets
  the row back (``all_to_all``), so negatives come from all shards. Every shard holds
  exactly the rows of the replicated bank (same initialisation, same updates).
  For checkpoints, ``gather_for_checkpoint`` assembles the whole bank on rank
  0 (on the CPU), which ``state_dict`` then saves; loading a whole bank keeps a
  shard's own rows, so sharded and replicated checkpoints are interchangeable.

Which rows have been written at least once is a second buffer, ``written`` (one byte per
row, set on the device by ``update``, checkpointed with the bank), so that the log can say how
much of the bank holds real embeddings (``written_rows``, read at the end of an epoch only) and
how many a resumed run got back from its checkpoint (``restored_rows``). A checkpoint written
before this buffer existed has its rows counted as written where they differ from the random
start.
"""
import math
from typing import Dict, Optional, Tuple

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from vissl_pirl_plugin.utils.distributed_checks import INDEX_OUTSIDE_BANK, FailureRecord

STORAGE_DTYPES = {"float32": torch.float32, "float16": torch.float16}
INIT_BLOCK_ROWS = 4096
# how the bank starts (memory_bank.init): "unit", NPID's unit rows, the same on every rank;
# "vissl_rank_mean", VISSL 0.1.6's bank after its first forward: each rank's own unit rows,
# averaged over the ranks and not renormalised (norm about 1/sqrt(world) until updated)
BANK_INITS = ("unit", "vissl_rank_mean")
RANK_SEED_STRIDE = 7919


def initial_bank_rows(start: int, end: int, embedding_dim: int, seed: int, init: str = "unit",
                      world_size: int = 1) -> torch.Tensor:
    """Rows ``[start, end)`` of the initial bank of ``init`` (``BANK_INITS``) for ``world_size``
    ranks; every rank computes the same rows without communication."""
    if init not in BANK_INITS:
        raise ValueError(f"memory_bank.init={init!r}: use one of {BANK_INITS}.")
    if init == "unit" or world_size == 1:
        return initial_rows(start, end, embedding_dim, seed)
    return sum(initial_rows(start, end, embedding_dim, seed + RANK_SEED_STRIDE * rank)
               for rank in range(world_size)) / world_size


def initial_rows(start: int, end: int, embedding_dim: int, seed: int) -> torch.Tensor:
    """Rows ``[start, end)`` of NPID's initial bank: uniform in ``[-stdv, stdv]``, normalised.

    Generated in seeded blocks, so any shard is built without the whole bank.
    """
    stdv = 1.0 / math.sqrt(embedding_dim / 3)
    blocks = []
    for block in range(start // INIT_BLOCK_ROWS, (end - 1) // INIT_BLOCK_ROWS + 1 if end > start else 0):
        generator = torch.Generator().manual_seed(seed * 1_000_003 + block)
        rows = torch.rand(INIT_BLOCK_ROWS, embedding_dim, generator=generator) * (2 * stdv) - stdv
        first = block * INIT_BLOCK_ROWS
        blocks.append(rows[max(start, first) - first:min(end, first + INIT_BLOCK_ROWS) - first])
    if not blocks:
        return torch.zeros(0, embedding_dim)
    return F.normalize(torch.cat(blocks), dim=1)


class MemoryBank(nn.Module):
    """A bank of ``num_entries`` unit-norm ``embedding_dim`` vectors (or this rank's shard of it).

    Args:
        num_entries: ``|D|``, the size of the training set.
        embedding_dim: dimension of ``f(v_I)`` (128 in the paper).
        momentum: weight of the old entry in the moving average (0.5 in the paper).
        init_seed: seed of the random initialisation, so that every rank
            builds the same bank without communication.
        dtype: storage type, ``"float32"`` (default) or ``"float16"``.
        num_shards, shard_index: split the rows over ``num_shards`` ranks; this
            one holds shard ``shard_index``. 1 (default) keeps the whole bank.
        init, world_size: how the bank starts (``BANK_INITS``; ``initial_bank_rows``).
    """

    def __init__(self, num_entries: int, embedding_dim: int, momentum: float = 0.5,
                 init_seed: int = 0, dtype: str = "float32", num_shards: int = 1,
                 shard_index: int = 0, init: str = "unit", world_size: int = 1) -> None:
        super().__init__()
        if num_entries < 2:
            raise ValueError(f"The memory bank needs at least 2 entries, got {num_entries}.")
        if embedding_dim < 1:
            raise ValueError(f"memory_bank.embedding_dim must be >= 1, got {embedding_dim}.")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"memory_bank.momentum must be in [0, 1), got {momentum}.")
        if dtype not in STORAGE_DTYPES:
            raise ValueError(f"memory_bank.dtype={dtype!r}: use one of {sorted(STORAGE_DTYPES)}.")
        if not 0 <= shard_index < num_shards:
            raise ValueError(f"shard_index={shard_index} must be in [0, num_shards={num_shards}).")
        self.momentum = momentum
        self.num_entries = num_entries
        self.num_shards = num_shards
        self.rows_per_shard = rows = math.ceil(num_entries / num_shards)
        self.start, self.end = min(num_entries, shard_index * rows), min(num_entries, (shard_index + 1) * rows)
        self.initial = dict(embedding_dim=embedding_dim, seed=init_seed, init=init,
                            world_size=world_size)  # what initial_bank_rows needs
        rows = initial_bank_rows(self.start, self.end, **self.initial)
        self.register_buffer("embeddings", rows.to(STORAGE_DTYPES[dtype]))
        # 1 for each row updated at least once (uint8: scatter_reduce has no bool maximum)
        self.register_buffer("written", torch.zeros(self.end - self.start, dtype=torch.uint8))
        # the whole bank's buffers, assembled on rank 0 for a checkpoint of a sharded bank
        self.checkpoint_copy: Optional[Dict[str, torch.Tensor]] = None
        # rows written before the checkpoint this bank was loaded from; None: not loaded
        self.restored_rows: Optional[int] = None
        self.failures = FailureRecord()  # checks awaiting agreement across ranks

    @property
    def sharded(self) -> bool:
        return self.num_shards > 1

    @property
    def embedding_dim(self) -> int:
        return self.embeddings.shape[1]

    def describe(self) -> str:
        """The storage in a few words, for the log: ``float32, replicated on every rank``."""
        layout = f"{self.num_shards} shards" if self.sharded else "replicated on every rank"
        return f"{str(self.embeddings.dtype).removeprefix('torch.')}, {layout}"

    def check_indices(self, indices: torch.Tensor, keep: Optional[torch.Tensor] = None
                      ) -> torch.Tensor:
        """``index_mask``, and a kept index outside the bank is recorded in ``failures``.

        On the device, no host sync: every rank raises at the next ``agree_on_failures``
        of the ``NonFiniteGuardHook``. The loss checks its own samples' indices, so the
        failure names the rank that got the bad index.
        """
        valid = self.index_mask(indices, keep)
        if indices.numel() > 0:
            outside = ~valid if keep is None else keep & ~valid
            self.failures.record(INDEX_OUTSIDE_BANK, outside.any(),
                                 indices.index_select(0, first_true(outside)).squeeze(0))
        return valid

    def index_mask(self, indices: torch.Tensor, keep: Optional[torch.Tensor] = None
                   ) -> torch.Tensor:
        """The mask of ``indices`` that are kept (``keep``, default all) and inside the bank."""
        inside = (indices >= 0) & (indices < self.num_entries)
        return inside if keep is None else keep & inside

    def check_embeddings(self, embeddings: torch.Tensor) -> None:
        if embeddings.dim() != 2 or embeddings.shape[1] != self.embedding_dim:
            raise ValueError(
                f"Embeddings of shape {tuple(embeddings.shape)} do not match the memory bank's "
                f"embedding_dim {self.embedding_dim}. Set the last head's output dimension and "
                "LOSS.pirl_loss.memory_bank.embedding_dim to the same value."
            )

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """The entries ``m_I`` at ``indices`` (any shape), detached, as float32.

        Sharded: a collective call, made by every rank with its own indices.
        """
        if not self.sharded:
            return self.embeddings[indices].detach().float()
        return self._sharded_lookup(indices.reshape(-1)).view(*indices.shape, self.embedding_dim)

    def _sharded_lookup(self, flat: torch.Tensor) -> torch.Tensor:
        """Each index goes to the rank that owns its row and the row comes back (``all_to_all``
        of the counts, the indices and the rows), so a rank moves only its own request
        (indices out, rows in, in the storage dtype) and the rows that others ask of it."""
        if dist.get_world_size() != self.num_shards:
            raise RuntimeError(f"A bank of {self.num_shards} shards is used by "
                               f"{dist.get_world_size()} ranks; shard it over the world size.")
        owners = flat // self.rows_per_shard
        order = torch.argsort(owners, stable=True)
        send_counts = torch.bincount(owners, minlength=self.num_shards)
        recv_counts = torch.empty_like(send_counts)
        dist.all_to_all_single(recv_counts, send_counts)
        sent, received = send_counts.tolist(), recv_counts.tolist()
        asked = flat.new_empty(sum(received))
        dist.all_to_all_single(asked, flat[order].contiguous(), received, sent)
        answers = self.embeddings[asked - self.start].contiguous()
        rows = answers.new_empty(flat.numel(), self.embedding_dim)
        dist.all_to_all_single(rows, answers, sent, received)
        looked_up = torch.empty_like(rows)
        looked_up[order] = rows
        return looked_up.float()

    @torch.no_grad()
    def update(self, embeddings: torch.Tensor, indices: torch.Tensor,
               keep: Optional[torch.Tensor] = None) -> None:
        """EMA update ``m_I <- normalize(w * m_I + (1 - w) * f(v_I))`` of the rows held here.

        ``embeddings`` must already be normalised ``f(v_I)``, gathered from all
        ranks; entries where ``keep`` is false (failed images) and indices outside the bank
        (which ``check_indices`` reports) are left out. If an index
        occurs several times (the distributed sampler pads the last batch with repeats),
        its first occurrence is used, so that every rank writes the same value.
        Without host syncs: every entry writes a row, those left out rewrite a written
        row with its own new value (or row 0 with its current value).
        """
        self.check_embeddings(embeddings)
        indices = indices.view(-1)
        held = self.index_mask(indices, keep) & (indices >= self.start) & (indices < self.end)
        if indices.numel() == 0 or self.end == self.start:
            return
        positions = torch.arange(indices.numel(), device=indices.device)
        first = first_occurrences(torch.where(held, indices, -1 - positions))
        rows = (indices - self.start).clamp(0, self.end - self.start - 1)
        mixed = self.momentum * self.embeddings[rows].float() + (1 - self.momentum) * embeddings[first]
        mixed = F.normalize(mixed, dim=1).to(self.embeddings.dtype)
        anchor = first_true(held)  # the first held entry, if any
        anchor_held = held.index_select(0, anchor)
        anchor_row = torch.where(anchor_held, rows.index_select(0, anchor), 0)
        anchor_value = torch.where(anchor_held.unsqueeze(1), mixed.index_select(0, anchor),
                                   self.embeddings[:1])
        self.embeddings.index_copy_(0, torch.where(held, rows, anchor_row),
                                    torch.where(held.unsqueeze(1), mixed, anchor_value))
        self.written.scatter_reduce_(0, rows, held.to(torch.uint8), reduce="amax")

    def written_rows(self) -> Tuple[int, float]:
        """``(rows written at least once, mean norm of the rows)`` of the whole bank.

        Reads two numbers to the host (a sync on a GPU): for the end of an epoch, not the step.
        Sharded: a collective (an ``all_reduce`` of the shards' sums).
        """
        sums = torch.stack([self.written.sum(dtype=torch.float64),
                            torch.linalg.vector_norm(self.embeddings, dim=1, dtype=torch.float32)
                            .sum(dtype=torch.float64)])
        if self.sharded:
            dist.all_reduce(sums)
        written, norms = sums.tolist()
        return int(written), norms / self.num_entries

    def gather_for_checkpoint(self) -> None:
        """Sharded: assembles the whole bank on rank 0 (CPU) for ``state_dict``; collective.

        A ``gather`` to rank 0 only, shard by shard to the CPU, of each buffer; call it only
        when a checkpoint is written (``MemoryBankUpdateHook`` does).
        """
        if not self.sharded:
            return
        primary = dist.get_rank() == 0
        copies = {}
        for name, buffer in (("embeddings", self.embeddings), ("written", self.written)):
            shard = buffer.new_zeros(self.rows_per_shard, *buffer.shape[1:])
            shard[:self.end - self.start] = buffer
            shards = [torch.empty_like(shard) for _ in range(self.num_shards)] if primary else None
            dist.gather(shard, shards, dst=0)
            if primary:
                copies[name] = torch.cat([s.cpu() for s in shards])[:self.num_entries]
        self.checkpoint_copy = copies if primary else None

    def _save_to_state_dict(self, destination, prefix, keep_vars) -> None:
        super()._save_to_state_dict(destination, prefix, keep_vars)
        if self.sharded and self.checkpoint_copy is not None:
            for name, whole in self.checkpoint_copy.items():
                destination[prefix + name] = whole
        elif self.sharded and dist.get_rank() == 0:
            raise RuntimeError("A sharded memory bank is saved whole: call "
                               "gather_for_checkpoint() on every rank first.")

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        key, written_key = prefix + "embeddings", prefix + "written"
        if key in state_dict and written_key not in state_dict:
            state_dict[written_key] = self._moved_from_start(state_dict[key])
        if written_key in state_dict:
            self.restored_rows = int(state_dict[written_key].sum())
        for name in (key, written_key):
            if name in state_dict and state_dict[name].shape[0] == self.num_entries:
                state_dict[name] = state_dict[name][self.start:self.end].to(
                    getattr(self, name[len(prefix):]).dtype)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _moved_from_start(self, bank: torch.Tensor) -> torch.Tensor:
        """``written`` of a checkpoint that has none: the rows of ``bank`` (whole, or this
        shard) that differ from their initial value, generated block by block."""
        start = self.start if bank.shape[0] != self.num_entries else 0
        flags = []
        for first in range(0, bank.shape[0], INIT_BLOCK_ROWS):
            last = min(bank.shape[0], first + INIT_BLOCK_ROWS)
            initial = initial_bank_rows(start + first, start + last, **self.initial)
            flags.append((bank[first:last].cpu() != initial.to(bank.dtype)).any(dim=1))
        return torch.cat(flags).to(torch.uint8) if flags else torch.zeros(0, dtype=torch.uint8)


def first_true(mask: torch.Tensor) -> torch.Tensor:
    """The position of ``mask``'s first true entry (0 if none) as a one-element index tensor.

    Gathering with it (``index_select``) stays on the device; indexing with a 0-d tensor would
    read the index to the host (a sync on CUDA).
    """
    return torch.argmax(mask.to(torch.uint8)).view(1)


def first_occurrences(values: torch.Tensor) -> torch.Tensor:
    """For each position of a 1-D tensor, the position of the first occurrence of its value.

    A stable sort and a running maximum, so no host sync (``torch.unique`` would make one).
    """
    sorted_values, order = torch.sort(values, stable=True)
    positions = torch.arange(values.numel(), device=values.device)
    starts = torch.ones_like(sorted_values, dtype=torch.bool)
    starts[1:] = sorted_values[1:] != sorted_values[:-1]
    run_start = torch.cummax(torch.where(starts, positions, 0), dim=0).values
    first = torch.empty_like(order)
    first[order] = order[run_start]
    return first

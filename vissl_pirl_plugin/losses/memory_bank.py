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
"""
import math
from typing import Optional

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

STORAGE_DTYPES = {"float32": torch.float32, "float16": torch.float16}
INIT_BLOCK_ROWS = 4096


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
    """

    def __init__(self, num_entries: int, embedding_dim: int, momentum: float = 0.5,
                 init_seed: int = 0, dtype: str = "float32", num_shards: int = 1,
                 shard_index: int = 0) -> None:
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
        init = initial_rows(self.start, self.end, embedding_dim, init_seed)
        self.register_buffer("embeddings", init.to(STORAGE_DTYPES[dtype]))
        self.checkpoint_copy: Optional[torch.Tensor] = None

    @property
    def sharded(self) -> bool:
        return self.num_shards > 1

    @property
    def embedding_dim(self) -> int:
        return self.embeddings.shape[1]

    def check_indices(self, indices: torch.Tensor) -> None:
        """Raises if a dataset index falls outside the bank (one host sync on accelerators,
        which VISSL's train step makes anyway when it reads the loss)."""
        if indices.numel() == 0:
            return
        low, high = torch.stack(torch.aminmax(indices)).tolist()
        if low < 0 or high >= self.num_entries:
            bad = high if high >= self.num_entries else low
            raise IndexError(
                f"Dataset index {bad} is outside the memory bank of {self.num_entries} entries. "
                "The bank is sized from the training dataset (loss num_train_samples): check "
                "that DATA.TRAIN.LABEL_TYPE is sample_index and that the dataset did not grow "
                "since the checkpoint was written."
            )

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
    def update(self, embeddings: torch.Tensor, indices: torch.Tensor) -> None:
        """EMA update ``m_I <- normalize(w * m_I + (1 - w) * f(v_I))`` of the rows held here.

        ``embeddings`` must already be normalised ``f(v_I)``, gathered from all
        ranks. If an index occurs several times (the distributed sampler pads
        the last batch with repeats), its first occurrence is used, so that every
        rank writes the same value.
        """
        self.check_embeddings(embeddings)
        indices = indices.view(-1)
        self.check_indices(indices)
        first = first_occurrences(indices)
        indices, embeddings = indices[first], embeddings[first]
        held = (indices >= self.start) & (indices < self.end)
        rows, embeddings = indices[held] - self.start, embeddings[held]
        mixed = self.momentum * self.embeddings[rows].float() + (1 - self.momentum) * embeddings
        self.embeddings.index_copy_(0, rows, F.normalize(mixed, dim=1).to(self.embeddings.dtype))

    def gather_for_checkpoint(self) -> None:
        """Sharded: assembles the whole bank on rank 0 (CPU) for ``state_dict``; collective."""
        if not self.sharded:
            return
        shard = torch.zeros(self.rows_per_shard, self.embedding_dim, dtype=self.embeddings.dtype,
                            device=self.embeddings.device)
        shard[:self.end - self.start] = self.embeddings
        shards = [torch.empty_like(shard) for _ in range(self.num_shards)]
        dist.all_gather(shards, shard)
        if dist.get_rank() == 0:
            self.checkpoint_copy = torch.cat(shards)[:self.num_entries].cpu()

    def _save_to_state_dict(self, destination, prefix, keep_vars) -> None:
        super()._save_to_state_dict(destination, prefix, keep_vars)
        if self.sharded and self.checkpoint_copy is not None:
            destination[prefix + "embeddings"] = self.checkpoint_copy
        elif self.sharded and dist.get_rank() == 0:
            raise RuntimeError("A sharded memory bank is saved whole: call "
                               "gather_for_checkpoint() on every rank first.")

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        key = prefix + "embeddings"
        if key in state_dict and state_dict[key].shape[0] == self.num_entries:
            state_dict[key] = state_dict[key][self.start:self.end].to(self.embeddings.dtype)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


def first_occurrences(indices: torch.Tensor) -> torch.Tensor:
    """Positions of the first occurrence of each distinct value of a 1-D tensor."""
    unique, inverse = torch.unique(indices, return_inverse=True)
    positions = torch.arange(indices.numel(), device=indices.device)
    first = torch.full((unique.numel(),), indices.numel(), dtype=torch.long, device=indices.device)
    return first.scatter_reduce(0, inverse, positions, reduce="amin")

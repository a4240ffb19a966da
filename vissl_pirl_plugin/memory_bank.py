"""The memory bank ``M`` of PIRL (paper §2.2).

``M`` holds one representation ``m_I`` per dataset image: an exponential moving
average of the normalised ``f(v_I)`` computed on the *untransformed* image,
renormalised after each update (``m_I <- normalize(w * m_I + (1 - w) * f(v_I))``,
``w = 0.5`` in the paper, following NPID). Negatives ``m_I'`` are read from it.

Pure tensor logic: distribution (gathering, broadcasting) is the hook's job.
The bank is a buffer, so it is saved with the loss's ``state_dict`` in VISSL
checkpoints and restored on resume.

``dtype="float16"`` (an option) stores the bank in half precision, halving its
memory and checkpoint size (ImageNet: 313 MiB instead of 626 MiB); reads return
float32 and the EMA update is computed in float32 before rounding to storage.
"""
import math

import torch
import torch.nn.functional as F
from torch import nn


STORAGE_DTYPES = {"float32": torch.float32, "float16": torch.float16}


class MemoryBank(nn.Module):
    """A ``(num_entries, embedding_dim)`` bank of unit-norm representations.

    Args:
        num_entries: ``|D|``, the size of the training set.
        embedding_dim: dimension of ``f(v_I)`` (128 in the paper).
        momentum: weight of the old entry in the moving average (0.5 in the paper).
        init_seed: seed of the random initialisation, so that every rank
            builds the same bank without communication.
        dtype: storage type, ``"float32"`` (default) or ``"float16"``.
    """

    def __init__(self, num_entries: int, embedding_dim: int, momentum: float = 0.5,
                 init_seed: int = 0, dtype: str = "float32") -> None:
        super().__init__()
        if num_entries < 2:
            raise ValueError(f"The memory bank needs at least 2 entries, got {num_entries}.")
        if embedding_dim < 1:
            raise ValueError(f"memory_bank.embedding_dim must be >= 1, got {embedding_dim}.")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"memory_bank.momentum must be in [0, 1), got {momentum}.")
        if dtype not in STORAGE_DTYPES:
            raise ValueError(f"memory_bank.dtype={dtype!r}: use one of {sorted(STORAGE_DTYPES)}.")
        self.momentum = momentum
        generator = torch.Generator().manual_seed(init_seed)
        # NPID's initialisation: uniform in [-stdv, stdv], then normalised.
        stdv = 1.0 / math.sqrt(embedding_dim / 3)
        init = torch.rand(num_entries, embedding_dim, generator=generator) * (2 * stdv) - stdv
        self.register_buffer("embeddings", F.normalize(init, dim=1).to(STORAGE_DTYPES[dtype]))

    @property
    def num_entries(self) -> int:
        return self.embeddings.shape[0]

    @property
    def embedding_dim(self) -> int:
        return self.embeddings.shape[1]

    def check_indices(self, indices: torch.Tensor) -> None:
        """Raises if a dataset index falls outside the bank."""
        if indices.numel() == 0:
            return
        low, high = int(indices.min()), int(indices.max())
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
        """The entries ``m_I`` at ``indices`` (any shape), detached, as float32."""
        return self.embeddings[indices].detach().float()

    @torch.no_grad()
    def update(self, embeddings: torch.Tensor, indices: torch.Tensor) -> None:
        """EMA update ``m_I <- normalize(w * m_I + (1 - w) * f(v_I))``.

        ``embeddings`` must already be normalised ``f(v_I)``. If an index occurs
        several times (the distributed sampler pads the last batch with
        repeats), its first occurrence is used, so that every rank writes the
        same value.
        """
        self.check_embeddings(embeddings)
        indices = indices.view(-1)
        self.check_indices(indices)
        first = first_occurrences(indices)
        indices, embeddings = indices[first], embeddings[first]
        mixed = self.momentum * self.embeddings[indices].float() + (1 - self.momentum) * embeddings
        self.embeddings.index_copy_(0, indices, F.normalize(mixed, dim=1).to(self.embeddings.dtype))


def first_occurrences(indices: torch.Tensor) -> torch.Tensor:
    """Positions of the first occurrence of each distinct value of a 1-D tensor."""
    unique, inverse = torch.unique(indices, return_inverse=True)
    positions = torch.arange(indices.numel(), device=indices.device)
    first = torch.full((unique.numel(),), indices.numel(), dtype=torch.long, device=indices.device)
    return first.scatter_reduce(0, inverse, positions, reduce="amin")

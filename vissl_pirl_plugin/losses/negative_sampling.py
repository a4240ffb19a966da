"""Uniform negative sampling from ``D \\ {I}`` (paper §2.1, Eq. 4).

The paper draws the ``N`` negatives "uniformly at random from dataset D
excluding image I". Both samplers below are exact: the positive can never be
drawn, and every other index is equally likely. They replace VISSL's alias
sampler (a uniform draw needs none) and run without host-device syncs.
"""
import torch


def sample_per_sample_negatives(positives: torch.Tensor, dataset_size: int, num_negatives: int,
                                generator: torch.Generator = None) -> torch.Tensor:
    """Draws ``num_negatives`` indices per positive, uniformly from ``D \\ {positive}``.

    Sampling is with replacement, as in NPID and the authors' code. A draw
    ``r`` in ``[0, |D| - 2]`` is shifted past the positive (``r + (r >= i)``),
    which is a bijection onto ``D \\ {i}``.

    Returns:
        ``(B, num_negatives)`` int64 indices.
    """
    _check_sizes(dataset_size, num_negatives, excluded=1)
    draws = torch.randint(0, dataset_size - 1, (positives.numel(), num_negatives),
                          device=positives.device, generator=generator)
    return draws + (draws >= positives.view(-1, 1)).long()


def sample_shared_negatives(positives: torch.Tensor, dataset_size: int, num_negatives: int,
                            generator: torch.Generator = None) -> torch.Tensor:
    """Draws one set of negatives for the whole batch, from ``D`` minus every positive.

    Excluding all positives of the batch keeps each sample's negatives inside
    ``D \\ {I}``. A draw ``r`` over the ``|D| - |U|`` allowed indices is mapped
    to the ``r``-th index not in the set ``U`` of the batch's distinct positives. ``|U|``
    stays on the device (no host sync, which ``torch.unique`` would make), so ``r`` is
    drawn as ``floor(u * (|D| - |U|))`` from a float64 ``u`` uniform in [0, 1).

    Returns:
        ``(num_negatives,)`` int64 indices.
    """
    _check_sizes(dataset_size, num_negatives, excluded=positives.numel())
    excluded = torch.sort(positives.view(-1)).values
    starts = torch.ones_like(excluded, dtype=torch.bool)
    starts[1:] = excluded[1:] != excluded[:-1]
    distinct_so_far = torch.cumsum(starts, dim=0)
    allowed = dataset_size - starts.sum()
    uniform = torch.rand(num_negatives, dtype=torch.float64, device=positives.device,
                         generator=generator)
    draws = torch.minimum((uniform * allowed).long(), allowed - 1)
    # the distinct excluded index u_j has (u_j - j) allowed indices below it; repeats of a
    # value share its count and add no shift
    free_below = excluded - (distinct_so_far - 1)
    below = torch.searchsorted(free_below, draws, right=True)
    return draws + torch.cat([distinct_so_far.new_zeros(1), distinct_so_far])[below]


def _check_sizes(dataset_size: int, num_negatives: int, excluded: int) -> None:
    if num_negatives < 1:
        raise ValueError(f"num_negatives must be >= 1, got {num_negatives}.")
    if dataset_size - excluded < 1:
        raise ValueError(
            f"Cannot draw negatives: the dataset has {dataset_size} samples and {excluded} "
            "of them are positives of this batch. Use a dataset with more images than the "
            "batch size."
        )

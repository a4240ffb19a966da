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
    to the ``r``-th index not in the sorted excluded set ``U``.

    Returns:
        ``(num_negatives,)`` int64 indices.
    """
    excluded = torch.unique(positives.view(-1))  # sorted
    _check_sizes(dataset_size, num_negatives, excluded=excluded.numel())
    draws = torch.randint(0, dataset_size - excluded.numel(), (num_negatives,),
                          device=positives.device, generator=generator)
    # the k-th excluded index has (excluded[k] - k) allowed indices below it
    free_below = excluded - torch.arange(excluded.numel(), device=excluded.device)
    return draws + torch.searchsorted(free_below, draws, right=True)


def _check_sizes(dataset_size: int, num_negatives: int, excluded: int) -> None:
    if num_negatives < 1:
        raise ValueError(f"num_negatives must be >= 1, got {num_negatives}.")
    if dataset_size - excluded < 1:
        raise ValueError(
            f"Cannot draw negatives: the dataset has {dataset_size} samples and {excluded} "
            "of them are positives of this batch. Use a dataset with more images than the "
            "batch size."
        )

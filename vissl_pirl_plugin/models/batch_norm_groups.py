"""How many ranks share one batch norm's statistics, so that each covers enough images.

The paper (Appendix, "Training details") trains with 32 images per GPU and per-GPU batch norm:
each batch norm normalises with the statistics of 32 images. With fewer images per GPU the
statistics are noisier and, with VISSL's fixed split of the data across ranks, come from a few
classes; ``MODEL.SYNC_BN_CONFIG.BN_MIN_SAMPLES`` (32 in the PIRL configs) keeps them over at least
that many images by synchronising batch norm in groups of ranks, VISSL's
``SYNC_BN_CONFIG.GROUP_SIZE``. At 32 images per GPU or more, nothing is synchronised: the paper's
and the authors' config's per-GPU batch norm.
"""
import math


def sync_group_size(per_replica: int, world_size: int, min_samples: int) -> int:
    """The ranks per synchronised batch norm group: 1 (per-rank batch norm) when one rank's
    ``per_replica`` images reach ``min_samples`` (or ``min_samples`` is 0, or there is one rank),
    else the smallest divisor of ``world_size`` whose group reaches it (groups of equal size,
    ranks ``k·g … (k+1)·g − 1``, so within a node when the group divides the ranks per node),
    or the whole world when none does."""
    if per_replica < 1 or world_size < 1 or min_samples < 0:
        raise ValueError(f"per_replica={per_replica} and world_size={world_size} must be >= 1 "
                         f"and min_samples={min_samples} >= 0.")
    needed = math.ceil(min_samples / per_replica)
    if needed <= 1 or world_size == 1:
        return 1
    return next((size for size in range(needed, world_size) if world_size % size == 0),
                world_size)

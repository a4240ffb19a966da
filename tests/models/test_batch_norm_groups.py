"""``sync_group_size``: ranks per synchronised batch norm so that its statistics cover enough
images."""
import pytest

from vissl_pirl_plugin.models.batch_norm_groups import sync_group_size


@pytest.mark.parametrize("per_replica, world, min_samples, group", [
    (32, 32, 32, 1),    # the paper: 32 per GPU, per-GPU batch norm
    (64, 8, 32, 1),
    (16, 2, 32, 2),     # make compare --ranks 2 (global batch 32)
    (8, 4, 32, 4),      # --ranks 4
    (8, 32, 32, 4),     # within a node of 8
    (16, 32, 32, 2),
    (8, 6, 32, 6),      # 4 does not divide 6: the next divisor
    (8, 5, 32, 5),
    (2, 4, 32, 4),      # the whole world, even short of 32
    (1, 1, 32, 1),      # one rank: nothing to sync
    (2, 8, 0, 1),       # 0: per-rank batch norm
])
def test_group_size(per_replica, world, min_samples, group):
    assert sync_group_size(per_replica, world, min_samples) == group


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="per_replica=0"):
        sync_group_size(0, 2, 32)
    with pytest.raises(ValueError, match="min_samples=-1"):
        sync_group_size(2, 2, -1)

"""``RANK_SPLIT: global_shuffle``: a fresh permutation of the whole dataset every epoch, split
across the ranks, with VISSL's mid-epoch resume; VISSL's order at one rank."""
import pytest
import torch
import torch.distributed as dist

from vissl.data.data_helper import StatefulDistributedSampler

from vissl_pirl_plugin.data.global_shuffle_sampler import GlobalShuffleSampler, build_sampler

CLASSES, PER_CLASS = 10, 32  # a folder read in class order: index // PER_CLASS is the class


def shares(world: int, epoch: int, size: int = CLASSES * PER_CLASS, batch: int = 4):
    samplers = [GlobalShuffleSampler(range(size), batch, seed=3, num_replicas=world, rank=rank)
                for rank in range(world)]
    for sampler in samplers:
        sampler.set_epoch(epoch)
    return [list(sampler) for sampler in samplers]


@pytest.fixture
def one_process_group(tmp_path):
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'init'}", rank=0,
                            world_size=1)
    yield
    dist.destroy_process_group()


def test_one_rank_draws_vissls_order(one_process_group):
    ours = GlobalShuffleSampler(range(50), batch_size=4, seed=7)
    vissl = StatefulDistributedSampler(range(50), batch_size=4, seed=7)
    for epoch in range(3):
        ours.set_epoch(epoch)
        vissl.set_epoch(epoch)
        assert list(ours) == list(vissl)


def test_every_sample_once_per_epoch_and_every_rank_sees_every_class():
    for epoch in range(3):
        split = shares(4, epoch)
        assert sorted(sum(split, [])) == list(range(CLASSES * PER_CLASS))
        for share in split:  # VISSL's blocks: 2 or 3 classes per rank, every epoch the same
            assert len({index // PER_CLASS for index in share}) == CLASSES
    assert shares(4, 0)[0] != shares(4, 1)[0]  # a fresh permutation each epoch


def test_a_share_changes_across_epochs_while_vissls_block_does_not():
    """Over the epochs an image visits every rank; VISSL keeps it on one."""
    ranks_of = {}
    for epoch in range(40):
        for rank, share in enumerate(shares(4, epoch, size=40, batch=2)):
            for index in share:
                ranks_of.setdefault(index, set()).add(rank)
    assert all(len(ranks) == 4 for ranks in ranks_of.values())


def test_a_dataset_not_divisible_by_the_ranks_is_padded_not_cut():
    split = shares(4, 0, size=10, batch=1)
    assert [len(share) for share in split] == [3, 3, 3, 3]
    assert set(sum(split, [])) == set(range(10))
    tiny = shares(4, 0, size=2, batch=1)  # fewer images than ranks
    assert [len(share) for share in tiny] == [1, 1, 1, 1] and set(sum(tiny, [])) == {0, 1}


def test_resume_at_an_iteration_continues_the_same_permutation():
    whole = shares(2, 5, batch=4)[1]
    sampler = GlobalShuffleSampler(range(CLASSES * PER_CLASS), 4, seed=3, num_replicas=2, rank=1)
    sampler.set_epoch(5)
    sampler.set_start_iter(7)
    assert list(sampler) == whole[7 * 4:]


def test_build_sampler_names_a_bad_split():
    with pytest.raises(ValueError, match="RANK_SPLIT='random'.*global_shuffle, vissl_blocks"):
        build_sampler(range(4), {"RANK_SPLIT": "random"})

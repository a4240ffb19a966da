"""``CpuSyncBatchNorm``: batch norm over the global batch of gloo ranks equals one process's batch
norm over the whole batch: outputs, gradients and running statistics, with no deprecated
collective."""
import os
import warnings

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from vissl.config import AttrDict
from vissl.models import convert_sync_bn

from vissl_pirl_plugin.models.cpu_sync_batch_norm import CpuSyncBatchNorm

WORLD, CHANNELS = 2, 3


def model() -> nn.Module:
    torch.manual_seed(0)
    layers = nn.Sequential(nn.Conv2d(2, CHANNELS, 3), nn.BatchNorm2d(CHANNELS), nn.ReLU(),
                           nn.Conv2d(CHANNELS, 1, 1))
    with torch.no_grad():
        layers[1].weight.uniform_(0.5, 1.5)
        layers[1].bias.uniform_(-0.5, 0.5)
    return layers


def whole_batch() -> torch.Tensor:
    return torch.randn(6, 2, 7, 7, generator=torch.Generator().manual_seed(1)) * 3 + 1


def train_two_steps(network: nn.Module, batch: torch.Tensor):
    """Outputs, input gradients and parameter gradients (summed over the two steps' losses)."""
    inputs = batch.clone().requires_grad_(True)
    outputs = network(inputs)
    (outputs.square().sum() + network(inputs * 0.5).sum()).backward()
    return outputs.detach(), inputs.grad, {n: p.grad for n, p in network.named_parameters()}


def on_rank(rank: int, init_file: str, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                            world_size=WORLD)
    network = CpuSyncBatchNorm.convert(nn.SyncBatchNorm.convert_sync_batchnorm(model()))
    assert isinstance(network[1], CpuSyncBatchNorm) and network[1].process_group is None
    share = whole_batch().chunk(WORLD)[rank]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        outputs, input_grad, grads = train_two_steps(network, share)
    torch.save({"outputs": outputs, "input_grad": input_grad, "grads": grads,
                "state": network[1].state_dict(),
                "future_warnings": [str(w.message) for w in caught
                                    if issubclass(w.category, FutureWarning)]}, f"{out}{rank}.pt")
    dist.destroy_process_group()


def test_two_ranks_normalise_over_the_global_batch(tmp_path):
    out = str(tmp_path / "rank")
    mp.spawn(on_rank, args=(str(tmp_path / "init"), out), nprocs=WORLD)
    ranks = [torch.load(f"{out}{rank}.pt") for rank in range(WORLD)]
    reference = model()
    outputs, input_grad, grads = train_two_steps(reference, whole_batch())
    torch.testing.assert_close(torch.cat([r["outputs"] for r in ranks]), outputs)
    torch.testing.assert_close(torch.cat([r["input_grad"] for r in ranks]), input_grad)
    for name, grad in grads.items():  # each rank's gradient of the global loss's share; DDP sums
        torch.testing.assert_close(sum(r["grads"][name] for r in ranks), grad)
    for rank in ranks:
        for key, value in reference[1].state_dict().items():
            torch.testing.assert_close(rank["state"][key], value)
        assert rank["future_warnings"] == []  # e.g. torch.distributed.nn's all_reduce


def on_rank_of_four(rank: int, init_file: str, out: str) -> None:
    """VISSL's conversion with ``GROUP_SIZE: 2`` (what ``BN_MIN_SAMPLES`` sets at 4 ranks of 16
    images), then the plugin's task's: ranks 0-1 and 2-3 each normalise over their pair."""
    os.environ["RANK"] = str(rank)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=4)
    config = AttrDict({"MODEL": {"SYNC_BN_CONFIG": {"GROUP_SIZE": 2, "SYNC_BN_TYPE": "pytorch"}},
                       "DISTRIBUTED": {"NUM_NODES": 1, "NUM_PROC_PER_NODE": 4}})
    network = CpuSyncBatchNorm.convert(convert_sync_bn(config, model()))
    assert dist.get_world_size(network[1].process_group) == 2
    outputs, _, _ = train_two_steps(network, four_shares()[rank])
    torch.save({"outputs": outputs, "state": network[1].state_dict()}, f"{out}{rank}.pt")
    dist.destroy_process_group()


def four_shares() -> tuple:
    return torch.cat([whole_batch(), whole_batch().flip(0) * 2]).chunk(4)


def test_four_ranks_in_groups_of_two_normalise_over_their_group(tmp_path):
    out = str(tmp_path / "rank")
    mp.spawn(on_rank_of_four, args=(str(tmp_path / "init"), out), nprocs=4)
    ranks = [torch.load(f"{out}{rank}.pt") for rank in range(4)]
    shares = four_shares()
    for group in ((0, 1), (2, 3)):
        reference = model()
        outputs, _, _ = train_two_steps(reference, torch.cat([shares[r] for r in group]))
        torch.testing.assert_close(torch.cat([ranks[r]["outputs"] for r in group]), outputs)
        for key, value in reference[1].state_dict().items():
            torch.testing.assert_close(ranks[group[0]]["state"][key], value)
    assert not torch.allclose(ranks[0]["state"]["running_mean"], ranks[2]["state"]["running_mean"])


def test_without_a_process_group_it_is_pytorchs_batch_norm():
    network = CpuSyncBatchNorm.convert(nn.SyncBatchNorm.convert_sync_batchnorm(model()))
    reference = model()
    torch.testing.assert_close(network(whole_batch()), reference(whole_batch()))
    torch.testing.assert_close(network[1].running_var, reference[1].running_var)
    network.eval()
    reference.eval()
    torch.testing.assert_close(network(whole_batch()), reference(whole_batch()))

"""Two gloo ranks of 16 images compute one process's PIRL steps of 32 (issue 27).

The demo's real model (VISSL's multi-input model: the trunk on the patches, then on the images;
the jigsaw head and the projection), the plugin's task's batch norm conversion (synchronised with
the defaults at 16 images per rank), DistributedDataParallel, ``pirl_loss`` and
``MemoryBankUpdateHook``, three SGD steps on a fixed global batch with fixed negatives: the
loss, the weights, the running statistics and the memory bank equal one process's on the whole
batch (the model in float64, to 1e-13; the loss and the bank, float32, to float32's rounding).
So what differs between 1 and 2 ranks in ``make compare`` (docs/comparison.md, "Several
ranks") is the draws (data order, augmentations, negatives), not the step's maths. With per-rank
batch norm (``BN_MIN_SAMPLES: 0``) the steps differ, as they should.
"""
from pathlib import Path
from types import SimpleNamespace
from typing import Dict, List, Tuple

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel
from vissl.config import AttrDict
from vissl.models import build_model, convert_sync_bn

from vissl_pirl_plugin.engine.config_validation import prepare_batch_norm
from vissl_pirl_plugin.engine.launcher import compose_config
from vissl_pirl_plugin.hooks.memory_bank_hook import MemoryBankUpdateHook
from vissl_pirl_plugin.losses import pirl_loss
from vissl_pirl_plugin.models.cpu_sync_batch_norm import CpuSyncBatchNorm

WORLD, BATCH, BANK, NEGATIVES, STEPS = 2, 32, 64, 8, 3


def fixed_negatives(indices: torch.Tensor, num_entries: int, num_negatives: int) -> torch.Tensor:
    """The same negatives for a sample on any rank: the next ``num_negatives`` indices."""
    return (indices[:, None] + torch.arange(1, num_negatives + 1)) % num_entries


def global_batch() -> Dict[str, torch.Tensor]:
    """32 images of 64 px, their 9 patches of 18 px each, and their indices in a bank of 64."""
    generator = torch.Generator().manual_seed(0)
    return {"patches": torch.randn(BATCH * 9, 3, 18, 18, generator=generator),
            "images": torch.randn(BATCH, 3, 64, 64, generator=generator) * 2 + 0.5,
            "indices": torch.randperm(BANK, generator=generator)[:BATCH]}


def train(world: int, rank: int, config_dir: Path, *overrides: str) -> Dict[str, torch.Tensor]:
    """``STEPS`` steps of the demo's model on rank ``rank``'s share of the global batch: the
    losses of the global batch, the memory bank and the model's state after them."""
    config = compose_config(["config=pretrain/pirl/pirl_jigsaw_cpu_demo",
                             f"config.CHECKPOINT.DIR={config_dir}",
                             f"config.DISTRIBUTED.NUM_PROC_PER_NODE={world}",
                             f"config.DATA.TRAIN.BATCHSIZE_PER_REPLICA={BATCH // world}",
                             *overrides])[1]
    prepare_batch_norm(config)
    default_dtype = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # rounding apart, so that equal means the same maths
    try:
        return steps(config, world, rank)
    finally:
        torch.set_default_dtype(default_dtype)


def steps(config: AttrDict, world: int, rank: int) -> Dict[str, torch.Tensor]:
    torch.manual_seed(0)
    model = build_model(config.MODEL, config.OPTIMIZER)
    if config.MODEL.SYNC_BN_CONFIG.CONVERT_BN_TO_SYNC_BN:  # as pirl_self_supervision_task does
        model = CpuSyncBatchNorm.convert(convert_sync_bn(config, model))
    network = DistributedDataParallel(model) if world > 1 else model
    loss = pirl_loss.PIRLLoss.from_config({**config.LOSS.pirl_loss, "num_train_samples": BANK,
                                           "num_negatives": NEGATIVES})
    hook = MemoryBankUpdateHook()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    task = SimpleNamespace(base_loss=loss, train=True, iteration=0, last_batch=SimpleNamespace())
    share = {key: value.chunk(world)[rank] for key, value in global_batch().items()}
    losses = []
    for _ in range(STEPS):
        output = network({"patches": share["patches"], "images": share["images"]})
        value = loss(output, share["indices"])
        optimizer.zero_grad()
        value.backward()
        optimizer.step()
        task.last_batch.model_output, task.last_batch.target = output, share["indices"]
        hook.on_update(task)
        task.iteration += 1
        losses.append(value.detach() / world)
        if world > 1:
            dist.all_reduce(losses[-1])  # the global batch's mean loss, as VISSL logs it
    return {"losses": torch.stack(losses).float(), "bank": loss.memory_bank.embeddings.clone(),
            **{f"state.{key}": value.detach().clone()
               for key, value in model.state_dict().items()}}


def on_rank(rank: int, tmp: str, overrides: tuple) -> None:
    dist.init_process_group("gloo", init_method=f"file://{tmp}/init", rank=rank,
                            world_size=WORLD)
    pirl_loss.sample_per_sample_negatives = fixed_negatives
    try:
        result = train(WORLD, rank, Path(tmp) / f"config{rank}", *overrides)
        torch.save(result, f"{tmp}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def two_ranks_and_one(tmp_path: Path, monkeypatch, *overrides: str
                      ) -> Tuple[List[Dict[str, torch.Tensor]], Dict[str, torch.Tensor]]:
    """What each of 2 ranks and what one process hold after the steps."""
    mp.spawn(on_rank, args=(str(tmp_path), overrides), nprocs=WORLD)
    ranks = [torch.load(tmp_path / f"rank{rank}.pt") for rank in range(WORLD)]
    monkeypatch.setattr(pirl_loss, "sample_per_sample_negatives", fixed_negatives)
    return ranks, train(1, 0, tmp_path / "config", *overrides)


@pytest.mark.slow
def test_two_ranks_take_one_process_steps_with_the_default_batch_norm(tmp_path, monkeypatch):
    ranks, one = two_ranks_and_one(tmp_path, monkeypatch)
    for rank in ranks:
        assert rank.keys() == one.keys()
        for key, expected in one.items():
            # the loss and the bank are float32 (the loss computes in float32 under any dtype)
            tolerance = {"rtol": 1e-9, "atol": 1e-12} if expected.dtype == torch.float64 else {}
            torch.testing.assert_close(rank[key], expected, **tolerance,
                                       msg=lambda message: f"{key}: {message}")
    assert one["losses"][-1] < one["losses"][0]  # it learns: the comparison is not of constants


@pytest.mark.slow
def test_per_rank_batch_norm_takes_other_steps(tmp_path, monkeypatch):
    ranks, one = two_ranks_and_one(tmp_path, monkeypatch,
                                   "config.MODEL.SYNC_BN_CONFIG.BN_MIN_SAMPLES=0")
    assert not torch.allclose(ranks[0]["losses"], one["losses"], rtol=1e-3, atol=1e-4)

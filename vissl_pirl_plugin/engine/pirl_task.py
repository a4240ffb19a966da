"""Task ``pirl_self_supervision_task``: VISSL's ``self_supervision_task`` with the data split
across ranks as ``DATA.TRAIN.RANK_SPLIT`` says, and batch norm across ranks on CPU processes.

The PIRL configs set ``TRAINER.TASK_NAME: pirl_self_supervision_task``. It differs from VISSL
0.1.6's task in two places, everything else (phases, checkpoints, hooks) being VISSL's:

* the training sampler: with ``RANK_SPLIT: global_shuffle`` (the configs' default) every epoch
  is a fresh permutation of the whole dataset split across the ranks
  (``data/global_shuffle_sampler.py``); ``vissl_blocks`` keeps VISSL's fixed per-rank blocks.
  VISSL's ``build_dataloader`` takes the sampler's builder as an argument that its task never
  passes: the one place to put it is here.
* ``MODEL.SYNC_BN_CONFIG.CONVERT_BN_TO_SYNC_BN`` with ``MACHINE.DEVICE: cpu``: VISSL converts
  only on GPUs and skips the conversion on CPUs silently; here the model gets VISSL's PyTorch
  ``SyncBatchNorm`` layers as ``CpuSyncBatchNorm`` (``models/cpu_sync_batch_norm.py``), so that a
  CPU run with several processes normalises over the global batch as a GPU run does.
"""
from typing import Dict

import torch
from classy_vision.tasks import register_task
from vissl.data import build_dataloader
from vissl.models import convert_sync_bn
from vissl.trainer.train_task import SelfSupervisionTask

from vissl_pirl_plugin.data.global_shuffle_sampler import build_sampler
from vissl_pirl_plugin.models.cpu_sync_batch_norm import CpuSyncBatchNorm

TASK_NAME = "pirl_self_supervision_task"


@register_task(TASK_NAME)
class PirlSelfSupervisionTask(SelfSupervisionTask):
    """VISSL's task with ``RANK_SPLIT``'s sampler and batch norm across CPU ranks."""

    def build_dataloaders(self, pin_memory: bool,
                          current_train_phase_idx: int = 0) -> Dict[str, torch.utils.data.DataLoader]:
        """VISSL's loaders (the same arguments as ``SelfSupervisionTask.build_dataloaders``),
        sampled by ``build_sampler``."""
        return {split.lower(): build_dataloader(
            dataset=self.datasets[split.lower()],
            dataset_config=self.config["DATA"][split],
            num_dataloader_workers=self.config.DATA.NUM_DATALOADER_WORKERS,
            pin_memory=pin_memory,
            multi_processing_method=self.config.MULTI_PROCESSING_METHOD,
            device=self.device,
            sampler_seed=self.config["SEED_VALUE"],
            split=split.lower(),
            get_sampler=build_sampler,
        ) for split in self.available_splits}

    def _build_model(self) -> torch.nn.Module:
        model = super()._build_model()
        sync_bn = self.config.MODEL.SYNC_BN_CONFIG
        if sync_bn.CONVERT_BN_TO_SYNC_BN and self.config.MACHINE.DEVICE == "cpu":
            model = CpuSyncBatchNorm.convert(convert_sync_bn(self.config, model))
        return model

"""Test helper: launches training with a hook that saves every rank's memory bank.

    python tests/bank_dump_hooks.py DUMP_DIR node_id=0 config=... overrides...

Banks are saved as ``DUMP_DIR/bank_{start,end}_rank{R}.pt`` at the start (after
any checkpoint is loaded) and at the end of training.
"""
import os
import sys

import torch
from classy_vision.generic.distributed_util import get_rank
from classy_vision.hooks.classy_hook import ClassyHook

from vissl_pirl_plugin.hook_generator import pirl_hook_generator


class BankDumpHook(ClassyHook):
    on_phase_start = ClassyHook._noop
    on_forward = ClassyHook._noop
    on_loss_and_meter = ClassyHook._noop
    on_backward = ClassyHook._noop
    on_update = ClassyHook._noop
    on_step = ClassyHook._noop
    on_phase_end = ClassyHook._noop

    def __init__(self, folder: str) -> None:
        super().__init__()
        self.folder = folder

    def _dump(self, task, when: str) -> None:
        loss = task.base_loss
        torch.save({"bank": loss.memory_bank.embeddings.clone(),
                    "log_z": loss.log_norm_constant.clone()},
                   os.path.join(self.folder, f"bank_{when}_rank{get_rank()}.pt"))

    def on_start(self, task) -> None:
        self._dump(task, "start")

    def on_end(self, task) -> None:
        self._dump(task, "end")


def dumping_hook_generator(cfg):
    return pirl_hook_generator(cfg) + [BankDumpHook(os.environ["PIRL_BANK_DUMP_DIR"])]


def main() -> None:
    from vissl_pirl_plugin.launcher import compose_config, launch

    os.environ["PIRL_BANK_DUMP_DIR"] = sys.argv[1]
    args, config = compose_config(sys.argv[2:])
    launch(config, engine_name=args.engine_name, node_id=args.node_id,
           hook_generator=dumping_hook_generator)


if __name__ == "__main__":
    main()

"""Test helper: the plugin's launcher with observation and fault-injection hooks.

    python tests/instrumented_launch.py DUMP_DIR [node_id=K] config=... overrides...

Always saves each rank's memory bank, Z and model state to
``DUMP_DIR/state_{start,end}_rank{R}.pt`` at the start (after any checkpoint is
loaded) and at the end of training, and appends each step's iteration and sample indices to
``DUMP_DIR/indices_rank{R}.jsonl``. Environment variables inject faults:

* ``PIRL_TEST_CORRUPT_RANK=R`` with ``PIRL_TEST_FAULT_STEP=S``: rank R perturbs one
  row of its bank after step S (rank drift);
* ``PIRL_TEST_NAN_STEP=S``: a trunk weight becomes NaN after step S;
* ``PIRL_TEST_STEP_SLEEP=T``: every step sleeps T seconds (time to kill the run).
"""
import json
import os
import sys
import time

import torch
from classy_vision.generic.distributed_util import get_rank

from vissl_pirl_plugin.hooks.hook_generator import pirl_hook_generator
from vissl_pirl_plugin.hooks.noop_hook import NoopHook


class StateDumpHook(NoopHook):
    def __init__(self, folder: str) -> None:
        super().__init__()
        self.folder = folder

    def _dump(self, task, when: str) -> None:
        loss = task.base_loss
        torch.save({"bank": loss.memory_bank.embeddings.clone(),
                    "log_z": loss.log_norm_constant.clone(),
                    "model": task.base_model.get_classy_state()["model"],
                    "iteration": task.iteration},
                   os.path.join(self.folder, f"state_{when}_rank{get_rank()}.pt"))

    def on_start(self, task) -> None:
        self._dump(task, "start")

    def on_update(self, task) -> None:
        with open(os.path.join(self.folder, f"indices_rank{get_rank()}.jsonl"), "a") as log:
            log.write(json.dumps({"iteration": task.iteration,
                                  "indices": task.last_batch.target.tolist()}) + "\n")

    def on_end(self, task) -> None:
        self._dump(task, "end")


class FaultInjectionHook(NoopHook):
    """Runs after the optimizer step (``on_update``), before the plugin's hooks look again."""

    def __init__(self) -> None:
        super().__init__()
        self.steps = 0

    def on_update(self, task) -> None:
        self.steps += 1
        env = os.environ
        if env.get("PIRL_TEST_STEP_SLEEP"):
            time.sleep(float(env["PIRL_TEST_STEP_SLEEP"]))
        if self.steps == int(env.get("PIRL_TEST_FAULT_STEP", -1)):
            if get_rank() == int(env.get("PIRL_TEST_CORRUPT_RANK", -1)):
                task.base_loss.memory_bank.embeddings[0].mul_(-1.0)
        if self.steps == int(env.get("PIRL_TEST_NAN_STEP", -1)):
            with torch.no_grad():
                next(task.base_model.parameters()).fill_(float("nan"))


def instrumented_hook_generator(cfg):
    hooks = pirl_hook_generator(cfg)
    # faults are injected before the plugin's own hooks run on the same event
    return [FaultInjectionHook()] + hooks + [StateDumpHook(os.environ["PIRL_TEST_DUMP_DIR"])]


def main() -> None:
    from vissl_pirl_plugin.engine.launcher import compose_config, launch

    os.environ["PIRL_TEST_DUMP_DIR"] = sys.argv[1]
    args, config = compose_config(sys.argv[2:])
    launch(config, engine_name=args.engine_name, node_id=args.node_id,
           hook_generator=instrumented_hook_generator)


if __name__ == "__main__":
    main()

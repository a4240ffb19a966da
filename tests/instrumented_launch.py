"""Test helper: the plugin's launcher with observation and fault-injection hooks.

    python tests/instrumented_launch.py DUMP_DIR [node_id=K] config=... overrides...

Always saves each rank's memory bank, Z and model state to
``DUMP_DIR/state_{start,end}_rank{R}.pt`` at the start (after any checkpoint is
loaded) and at the end of training, and appends each step's iteration and sample indices to
``DUMP_DIR/indices_rank{R}.jsonl``. Environment variables inject faults:

* ``PIRL_TEST_CORRUPT_RANK=R`` with ``PIRL_TEST_FAULT_STEP=S``: rank R perturbs one
  row of its bank after step S (rank drift);
* ``PIRL_TEST_NAN_STEP=S``: a trunk weight becomes NaN after step S;
* ``PIRL_TEST_STEP_SLEEP=T``: every step sleeps T seconds (time to kill the run);
* ``PIRL_TEST_PAUSE_STEP=S`` with ``PIRL_TEST_PAUSE_FILE=F``: in a SLURM job's first run (not
  after a requeue), every rank stops after step S's optimizer step, before the step is logged or
  checkpointed; rank 0 writes F, and all wait to be pre-empted (at most ``PAUSE_LIMIT_S``);
* ``PIRL_TEST_BARRIER_DIR=D`` with ``PIRL_TEST_BARRIER_COUNT=N``: at the start of training
  (after the ranks met), rank 0 of each SLURM job writes ``D/<job id>`` and waits until N jobs
  have (at most ``PAUSE_LIMIT_S``), so that N jobs run at the same time.

The launch passes the hooks as a function of the module ``instrumented_launch``, not of
``__main__``, so that the processes VISSL spawns (and a SLURM job, with ``tests/`` on its
``PYTHONPATH``) import them by name.
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


PAUSE_LIMIT_S = 600


def wait_for(ready, what: str) -> None:
    deadline = time.monotonic() + PAUSE_LIMIT_S
    while not ready():
        if time.monotonic() > deadline:
            raise RuntimeError(f"instrumented_launch: waited {PAUSE_LIMIT_S} s for {what}")
        time.sleep(0.2)


class FaultInjectionHook(NoopHook):
    """Runs after the optimizer step (``on_update``), before the plugin's hooks look again."""

    def __init__(self) -> None:
        super().__init__()
        self.steps = 0

    def on_start(self, task) -> None:
        env = os.environ
        if env.get("PIRL_TEST_BARRIER_DIR") and get_rank() == 0:
            folder = env["PIRL_TEST_BARRIER_DIR"]
            open(os.path.join(folder, env["SLURM_JOB_ID"]), "w").close()
            count = int(env["PIRL_TEST_BARRIER_COUNT"])
            wait_for(lambda: len(os.listdir(folder)) >= count, f"{count} jobs at the barrier")

    def on_update(self, task) -> None:
        self.steps += 1
        env = os.environ
        first_run = env.get("SLURM_RESTART_COUNT", "0") == "0"
        if self.steps == int(env.get("PIRL_TEST_PAUSE_STEP", -1)) and first_run:
            if get_rank() == 0:
                open(env["PIRL_TEST_PAUSE_FILE"], "w").close()
            wait_for(lambda: False, "a pre-emption")
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

    import instrumented_launch  # this file, by its module name (tests/ is sys.path[0])

    os.environ["PIRL_TEST_DUMP_DIR"] = sys.argv[1]
    args, config = compose_config(sys.argv[2:])
    launch(config, engine_name=args.engine_name, node_id=args.node_id,
           hook_generator=instrumented_launch.instrumented_hook_generator)


if __name__ == "__main__":
    main()

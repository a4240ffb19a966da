"""Kernel launches of one training step of VISSL's trainer, by part (issue 26), on the CPU.

    python benchmarks/step_launches.py OUT_JSON --images FOLDER --workdir FOLDER [--step 2]
        [overrides ...]

A training run of the paper config (``pirl_jigsaw_4node_resnet50``: ResNet-50, one CPU process,
batch 2, 64-px images, the patches at the paper's 64 px, 0 loader workers) through the plugin's
launcher, in this process, with ``StepLaunchHook`` last among the hooks: it counts every kernel
launch of training step ``--step`` (0-based; the steps before it warm up: Z's estimate, the
momentum buffers, ``MODEL.COMPILE``'s compilation, whose cost the first step's seconds give)
with ``LaunchCounter`` and gives each to the part of the step that made it. The count does not
depend on the image or batch size. The run ends after ``--step`` + 2 steps (``DATA_LIMIT``).

The parts, as VISSL's ``standard_train_step`` and its trainer loop run them:

* ``augmentation``: from the step's start to the model's forward (with
  ``+config/pretrain/pirl/augmentation=on_device`` the batch's views made on the device; the
  loader-side path has nothing here);
* ``trunk_forward``, ``heads``: the trunk's and each head's forward passes (module hooks); with
  ``MODEL.COMPILE`` the model's one compiled forward, heads included (``heads`` is then 0 and
  ``heads_in_trunk_forward`` true);
* ``loss``: the loss's forward pass;
* ``backward``: the backward pass, from the loss's gradient to the autograd engine's end;
* ``optimizer``: ``task.optimizer.step``;
* ``hooks``: VISSL's and the plugin's hooks (``task.run_hooks``: the memory-bank update, the
  non-finite guard, logging, checkpoints);
* ``vissl_step``: the rest of VISSL's step (the loss's copy, all-reduce and host read, DDP).

The data loader's work (decoding and collating in the loader workers) is counted apart
(``loader``) and left out of the step's total: it launches nothing on the training device.
VISSL's own profiler markers (``record_function``) launch nothing either and are left out.
"""
import argparse
import json
import os
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional

import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import vissl_pirl_plugin  # noqa: E402,F401  (first: its VISSL compatibility patches)
from vissl_pirl_plugin.engine.launcher import compose_config, launch  # noqa: E402
from vissl_pirl_plugin.hooks.hook_generator import pirl_hook_generator  # noqa: E402
from vissl_pirl_plugin.hooks.model_compile_hook import (  # noqa: E402
    compile_settings,
    compiled_module,
)
from vissl_pirl_plugin.hooks.noop_hook import NoopHook  # noqa: E402
from vissl_pirl_plugin.utils.launch_counter import LaunchCounter  # noqa: E402

PARTS = ("augmentation", "trunk_forward", "heads", "loss", "backward", "optimizer", "hooks",
         "vissl_step")
LOADER = "loader"  # counted apart, not part of the step
PROFILER_MARKERS = "profiler."  # VISSL's record_function scopes: no kernel
COMPILED_KERNELS = "inductor"  # LaunchCounter's tally of the kernels of compiled graphs
ON_DEVICE = "+config/pretrain/pirl/augmentation=on_device"
COMPILE = "config.MODEL.COMPILE.USE_COMPILE=true"
# the device augmentation compiled on the CPU too, as it runs on CUDA (it is eager on the CPU)
AUGMENTATION_COMPILED = "config.DATA.TRAIN.DEVICE_AUGMENTATION.COMPILE=true"
BATCH = 2


def cpu_overrides(images: Path, checkpoints: Path, steps: int) -> List[str]:
    """The paper config on one CPU process (docs/training.md's overrides), ``steps`` steps of
    ``BATCH`` 64-px images from ``images``."""
    return ["config=pretrain/pirl/pirl_jigsaw_4node_resnet50", "config.MACHINE.DEVICE=cpu",
            "config.DISTRIBUTED.BACKEND=gloo", "config.DISTRIBUTED.NUM_NODES=1",
            "config.DISTRIBUTED.NUM_PROC_PER_NODE=1", f"config.DATA.TRAIN.DATA_PATHS=[{images}]",
            f"config.DATA.TRAIN.DATA_LIMIT={BATCH * steps}",
            f"config.DATA.TRAIN.BATCHSIZE_PER_REPLICA={BATCH}",
            "config.DATA.TRAIN.TRANSFORMS.0.image_crop_size=64",
            "config.LOSS.pirl_loss.num_negatives=2", "config.OPTIMIZER.num_epochs=1",
            "config.DATA.NUM_DATALOADER_WORKERS=0", f"config.CHECKPOINT.DIR={checkpoints}"]


class PartTally:
    """Gives the launches ``counter`` sees to the part on top of a stack of parts."""

    def __init__(self, counter: LaunchCounter, ambient: str) -> None:
        self.counter, self.stack = counter, [ambient]
        self.by_part: Dict[str, Counter] = defaultdict(Counter)
        self.seen: Counter = Counter()

    def settle(self) -> None:
        """Gives the launches since the last change of part to the current part."""
        now = self.counter.by_op
        self.by_part[self.stack[-1]].update(now - self.seen)
        self.seen = Counter(now)

    def push(self, part: str) -> None:
        self.settle()
        self.stack.append(part)

    def pop(self) -> None:
        self.settle()
        self.stack.pop()

    def set_ambient(self, part: str) -> None:
        """The part of what runs outside every marked region."""
        self.settle()
        self.stack[0] = part

    def result(self) -> Dict[str, Any]:
        """Launches per part, the step's total, and per part by operator."""
        self.settle()
        ops = {part: {op: count for op, count in self.by_part[part].most_common()
                      if not op.startswith(PROFILER_MARKERS)}
               for part in (*PARTS, LOADER)}
        parts = {part: sum(ops[part].values()) for part in PARTS}
        compiled = {part: ops[part].get(COMPILED_KERNELS, 0) for part in PARTS}
        markers = sum(count for op, count in self.counter.by_op.items()
                      if op.startswith(PROFILER_MARKERS))
        return {"parts": parts, "total": sum(parts.values()),
                "loader": sum(ops[LOADER].values()), "compiled_kernels": compiled,
                "profiler_markers": markers, "counted": self.counter.total, "ops": ops}


class LoaderBatches:
    """The epoch's data iterator, its batches' making counted apart (``loader``)."""

    def __init__(self, batches: Iterator, marks: "StepLaunchHook") -> None:
        self.batches, self.marks = batches, marks

    def __iter__(self) -> "LoaderBatches":
        return self

    def __len__(self) -> int:
        return len(self.batches)

    def __next__(self) -> Any:
        with self.marks.part(LOADER):
            return next(self.batches)


class StepLaunchHook(NoopHook):
    """Counts the launches of training step ``step`` by part (``result``); goes last among the
    hooks, so that the counted step runs from the end of the step before's hooks to the end of
    its own."""

    def __init__(self, step: int) -> None:
        super().__init__()
        self.step = step
        self.counter: Optional[LaunchCounter] = None
        self.tally: Optional[PartTally] = None
        self.result: Optional[Dict[str, Any]] = None
        self.heads_in_trunk = False  # MODEL.COMPILE: the heads' launches are trunk_forward's
        self.phase_started = self.first_step_s = 0.0  # the first step's wall time (compilation)

    def part(self, name: str) -> "_Part":
        return _Part(self, name)

    def on_start(self, task) -> None:
        model = task.base_model
        task.model.register_forward_pre_hook(lambda *args: self._ambient("vissl_step"))
        if compile_settings(task.config["MODEL"])["USE_COMPILE"]:
            # one compiled graph (hooks on the trunk or heads would be traced into it)
            self.heads_in_trunk = True
            self._mark_module(compiled_module(model), "trunk_forward")
        else:
            self._mark_module(model.trunk, "trunk_forward")
            for head in model.heads:
                self._mark_module(head, "heads")
        self._mark_module(task.loss, "loss")
        task.loss.register_forward_hook(self._mark_backward)
        task.run_hooks = self._marked(task.run_hooks, "hooks")
        task.optimizer.step = self._marked(task.optimizer.step, "optimizer")

    def on_phase_start(self, task) -> None:
        task.data_iterator = LoaderBatches(task.data_iterator, self)
        self.phase_started = time.perf_counter()

    def on_step(self, task) -> None:
        if task.iteration == 1:
            self.first_step_s = time.perf_counter() - self.phase_started
        if task.iteration == self.step:  # step ``step`` runs next
            self.counter = LaunchCounter().__enter__()
            self.tally = PartTally(self.counter, "augmentation")
            self.tally.push("hooks")  # this hook runs inside task.run_hooks
        elif task.iteration == self.step + 1 and self.tally is not None:
            self.result = self.tally.result()
            self.result["heads_in_trunk_forward"] = self.heads_in_trunk
            self.result["first_step_s"] = self.first_step_s
            self.tally = None
            self.counter.__exit__(None, None, None)

    def _ambient(self, part: str) -> None:
        if self.tally is not None:
            self.tally.set_ambient(part)

    def _push(self, part: str) -> None:
        if self.tally is not None:
            self.tally.push(part)

    def _pop(self) -> None:
        if self.tally is not None:
            self.tally.pop()

    def _mark_module(self, module: torch.nn.Module, part: str) -> None:
        module.register_forward_pre_hook(lambda *args: self._push(part))
        module.register_forward_hook(lambda *args: self._pop())

    def _marked(self, function: Callable, part: str) -> Callable:
        def marked(*args, **kwargs):
            with self.part(part):
                return function(*args, **kwargs)
        return marked

    def _mark_backward(self, module, inputs, output: torch.Tensor) -> None:
        """The backward pass starts at the loss's gradient and ends with the autograd engine."""
        if self.tally is None or not output.requires_grad:
            return

        def starts(gradient: torch.Tensor) -> None:
            self._push("backward")
            torch.autograd.Variable._execution_engine.queue_callback(self._pop)
        output.register_hook(starts)


class _Part:
    """``with hook.part(name):`` marks a region of the step as part ``name``."""

    def __init__(self, hook: StepLaunchHook, name: str) -> None:
        self.hook, self.name = hook, name

    def __enter__(self) -> None:
        self.hook._push(self.name)

    def __exit__(self, *exc) -> None:
        self.hook._pop()


def count_step_launches(images: Path, workdir: Path, overrides: List[str] = (),
                        step: int = 2) -> Dict[str, Any]:
    """Launches of training step ``step`` by part: a run of the paper config on the CPU over
    ``images`` (a folder of at least ``BATCH * (step + 2)`` images), checkpoints in ``workdir``."""
    _, cfg = compose_config([*cpu_overrides(images, workdir / "checkpoints", step + 2),
                             *overrides])
    hook = StepLaunchHook(step)
    launch(cfg, hook_generator=lambda config: [*pirl_hook_generator(config), hook])
    if hook.result is None:
        raise RuntimeError(f"The run ended before training step {step} was counted.")
    return hook.result


def count_in_a_process(images: Path, workdir: Path, overrides: List[str] = ()) -> Dict[str, Any]:
    """``count_step_launches`` in a process of its own (a training run sets up
    ``torch.distributed`` and logging for its process), with ``--step`` 2 and an empty inductor
    cache in ``workdir`` (``first_step_s`` is then a compilation from scratch)."""
    out = workdir / "launches.json"
    env = dict(os.environ, TORCHINDUCTOR_CACHE_DIR=str(workdir / "inductor_cache"))
    subprocess.run([sys.executable, __file__, str(out), "--images", str(images), "--workdir",
                    str(workdir), *overrides], check=True, stdout=subprocess.DEVNULL, env=env)
    return json.loads(out.read_text())


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="JSON file for the counts")
    parser.add_argument("--images", type=Path, required=True)
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--step", type=int, default=2)
    args, overrides = parser.parse_known_args(argv)
    result = count_step_launches(args.images, args.workdir, overrides, args.step)
    args.out.write_text(json.dumps(result, indent=1))
    print(json.dumps({"parts": result["parts"], "total": result["total"]}))


if __name__ == "__main__":
    main()

"""``NonFiniteGuardHook``: stops training at the first NaN/Inf, before anything is saved.

VISSL's checkpoint hook reacts to a non-finite model output by writing an
iteration checkpoint of the broken model, which auto-resume then prefers over
the last good one. This hook runs before it: it raises ``FloatingPointError``
naming the step at the first non-finite model output or loss, so the run stops
and the last good checkpoint stays the newest.
"""
from typing import List, Union

import torch

from vissl_pirl_plugin.hooks.noop_hook import NoopHook


class NonFiniteGuardHook(NoopHook):
    def on_forward(self, task) -> None:
        if not all_finite(task.last_batch.model_output):
            self.stop(task, "model output")

    def on_loss_and_meter(self, task) -> None:
        if not all_finite(task.last_batch.loss):
            self.stop(task, f"loss ({float(task.last_batch.loss)})")

    @staticmethod
    def stop(task, what: str) -> None:
        raise FloatingPointError(
            f"Non-finite {what} at training step {task.iteration} (epoch {task.phase_idx}). "
            "Training stopped before saving anything; the last good checkpoint in "
            f"{task.checkpoint_folder} is unchanged and auto-resume restarts from it. Lower the "
            "learning rate or check the data.")


def all_finite(value: Union[torch.Tensor, List[torch.Tensor]]) -> bool:
    tensors = value if isinstance(value, (list, tuple)) else [value]
    return all(bool(torch.isfinite(t).all()) for t in tensors)

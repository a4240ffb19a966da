"""``ModelCompileHook``: ``MODEL.COMPILE.USE_COMPILE`` compiles the trunk and the heads with
``torch.compile`` at the start of training.

Eager PyTorch costs the host a kernel launch per operator, about 5 to 10 us each on a GPU: a
ResNet-50 forward and backward pass is several hundred launches. Inductor fuses the elementwise
operators (batch norm, ReLU, additions) into fewer generated kernels
(docs/performance.md, "Kernel launches per step").

Each module's ``forward`` is replaced by its compiled version (``torch.compile(module.forward)``),
not the module itself: the state dict keeps its keys (checkpoints load both ways), and hooks
registered on the modules stay outside the compiled code. ``dynamic=False``: every input shape
gets its own graph (two per step with the jigsaw pretext, patches and images; a smaller last
batch adds a compilation), and a graph with static shapes is what CUDA graphs
(``MODEL.COMPILE.MODE: reduce-overhead``) can capture. The compilation happens at the first
step's forward and backward passes.
"""
from typing import Any, Dict

import torch
from vissl.config import AttrDict

from vissl_pirl_plugin.hooks.noop_hook import NoopHook

COMPILE_KEY = "COMPILE"
MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def compile_settings(model_config: AttrDict) -> Dict[str, Any]:
    """``MODEL.COMPILE`` with its defaults (off, mode ``default``), checked: a bad value raises a
    one-line ``ValueError`` naming the fix."""
    settings = {"USE_COMPILE": False, "MODE": "default", **model_config.get(COMPILE_KEY, {})}
    if not isinstance(settings["USE_COMPILE"], bool):
        raise ValueError(f"MODEL.COMPILE.USE_COMPILE={settings['USE_COMPILE']!r}: use true or "
                         "false.")
    if settings["MODE"] not in MODES:
        raise ValueError(f"MODEL.COMPILE.MODE={settings['MODE']!r}: use one of {MODES} "
                         "(torch.compile's modes).")
    unknown = sorted(set(settings) - {"USE_COMPILE", "MODE"})
    if unknown:
        raise ValueError(f"MODEL.COMPILE has no key {unknown[0]!r}: its keys are USE_COMPILE and "
                         "MODE.")
    return settings


class ModelCompileHook(NoopHook):
    """Compiles ``task.base_model``'s trunk and each of its heads at ``on_start``."""

    def __init__(self, mode: str = "default") -> None:
        super().__init__()
        self.mode = mode

    def on_start(self, task) -> None:
        model = task.base_model
        for module in (model.trunk, *model.heads):
            module.forward = torch.compile(module.forward, mode=self.mode, dynamic=False)

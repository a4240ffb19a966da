"""``ModelCompileHook``: ``MODEL.COMPILE.USE_COMPILE`` compiles the model, its trunk and heads,
with ``torch.compile`` at the start of training.

Eager PyTorch costs the host a kernel launch per operator, about 5 to 10 us each on a GPU: a
ResNet-50 forward and backward pass is several hundred launches. Inductor fuses the elementwise
operators (batch norm, ReLU, additions) into fewer generated kernels
(docs/performance.md, "Kernel launches per step").

The model's ``forward`` is replaced by its compiled version, not the module itself: the state
dict keeps its keys (checkpoints load both ways), and hooks registered on the model (not on its
trunk or heads) stay outside the compiled code. The whole forward is one graph: the trunk and
heads on every input (patches and images with the jigsaw pretext), so that the backward pass is
one graph too, which sums each parameter's gradients from both inputs inside it (the trunk
compiled alone adds them outside, one kernel per parameter). ``dynamic=False``: shapes are
static, a new input shape (a smaller last batch) compiles a new graph, and a graph with static
shapes is what CUDA graphs (``MODEL.COMPILE.MODE: reduce-overhead``) can capture. The
compilation happens at the first step's forward and backward passes.
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


def compiled_module(model: torch.nn.Module) -> torch.nn.Module:
    """The ``nn.Module`` whose ``forward`` is compiled: VISSL's model itself, not the
    classy_vision wrapper around it (which dynamo cannot trace)."""
    return getattr(model, "classy_model", model)


class ModelCompileHook(NoopHook):
    """Compiles ``task.base_model``'s forward (its trunk and heads) at ``on_start``."""

    def __init__(self, mode: str = "default") -> None:
        super().__init__()
        self.mode = mode

    def on_start(self, task) -> None:
        model = compiled_module(task.base_model)
        model.forward = torch.compile(model.forward, mode=self.mode, dynamic=False)

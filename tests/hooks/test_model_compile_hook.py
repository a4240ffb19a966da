"""``MODEL.COMPILE`` (``ModelCompileHook``): the trunk and heads compiled, nothing else changed."""
from types import SimpleNamespace

import pytest
import torch
from torch import nn
from torch._dynamo.utils import counters
from vissl.config import AttrDict
from vissl.models import build_model
from vissl.models.base_ssl_model import BaseSSLMultiInputOutputModel

from vissl_pirl_plugin.hooks.hook_generator import pirl_hook_generator
from vissl_pirl_plugin.hooks.model_compile_hook import (
    ModelCompileHook,
    compile_settings,
    compiled_module,
)
from vissl_pirl_plugin.engine.launcher import compose_config


class TinyModel(nn.Module):
    """A trunk and two heads, as VISSL's model holds them (``trunk``, ``heads``)."""

    def __init__(self) -> None:
        super().__init__()
        self.trunk = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(),
                                   nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.heads = nn.ModuleList([nn.Linear(4, 2), nn.Linear(4, 3)])

    def forward(self, images: torch.Tensor) -> list:
        features = self.trunk(images)
        return [head(features) for head in self.heads]


def test_the_compiled_model_trains_as_the_eager_one_with_the_same_state_dict():
    torch.manual_seed(0)
    eager, compiled = TinyModel(), TinyModel()
    compiled.load_state_dict(eager.state_dict())
    calls = []
    compiled.register_forward_hook(lambda *args: calls.append("model"))
    torch._dynamo.reset()
    counters.clear()
    ModelCompileHook().on_start(SimpleNamespace(base_model=compiled))
    assert list(compiled.state_dict()) == list(eager.state_dict())  # checkpoints load both ways
    for size in (8, 8, 10):
        images = torch.randn(2, 3, size, size)
        for model in (eager, compiled):
            sum(output.sum() for output in model(images)).backward()
        for (name, a), b in zip(eager.named_parameters(), compiled.parameters()):
            torch.testing.assert_close(b.grad, a.grad, msg=name)
    assert calls == ["model"] * 3  # the model's hooks still run, outside the compiled code
    # trunk and heads in one graph per input shape, static: the second size is a second graph
    assert counters["stats"]["unique_graphs"] == 2


def test_vissls_model_is_compiled_inside_classy_visions_wrapper():
    _, cfg = compose_config(["config=pretrain/pirl/pirl_jigsaw_cpu_demo"])
    model = build_model(cfg.MODEL, cfg.OPTIMIZER)
    assert compiled_module(model) is model.classy_model
    assert isinstance(compiled_module(model), BaseSSLMultiInputOutputModel)


def test_the_hook_generator_adds_the_hook_only_when_asked():
    _, cfg = compose_config(["config=pretrain/pirl/pirl_jigsaw_4node_resnet50"])
    assert not any(isinstance(hook, ModelCompileHook) for hook in pirl_hook_generator(cfg))
    _, cfg = compose_config(["config=pretrain/pirl/pirl_jigsaw_4node_resnet50",
                             "config.MODEL.COMPILE.USE_COMPILE=true",
                             "config.MODEL.COMPILE.MODE=max-autotune"])
    hooks = pirl_hook_generator(cfg)
    assert isinstance(hooks[0], ModelCompileHook) and hooks[0].mode == "max-autotune"


@pytest.mark.parametrize("compile_config, match", [
    ({"USE_COMPILE": "yes"}, r"MODEL.COMPILE.USE_COMPILE='yes': use true or false\."),
    ({"MODE": "fast"}, r"MODEL.COMPILE.MODE='fast': use one of \('default', 'reduce-overhead'"),
    ({"ENABLED": True}, r"MODEL.COMPILE has no key 'ENABLED': its keys are USE_COMPILE and MODE"),
])
def test_bad_settings_name_the_fix(compile_config, match):
    with pytest.raises(ValueError, match=match):
        compile_settings(AttrDict({"COMPILE": compile_config}))
    assert compile_settings(AttrDict({})) == {"USE_COMPILE": False, "MODE": "default"}

"""``sgd_multi_tensor``: classy_vision's ``sgd`` on torch's multi-tensor path, on the CPU too."""
import copy
from typing import List

import pytest
import torch
from classy_vision.optim import build_optimizer, build_optimizer_schedulers
from vissl.models import build_model
from vissl.optimizers import get_optimizer_param_groups
from vissl.utils.hydra_config import AttrDict

from vissl_pirl_plugin.engine.launcher import compose_config
from vissl_pirl_plugin.optimizers.multi_tensor_sgd import OPTIMIZER_NAME, MultiTensorSGD


def demo_config(*overrides: str) -> AttrDict:
    _, cfg = compose_config(["config=pretrain/pirl/pirl_jigsaw_cpu_demo", *overrides])
    return cfg


def optimizer_of(model: torch.nn.Module, cfg: AttrDict, name: str):
    """What VISSL's task builds for ``OPTIMIZER.name=name``: the optimizer over VISSL's param
    groups (trunk and heads, each with and without weight decay)."""
    config = AttrDict(dict(cfg.OPTIMIZER, name=name))
    optimizer = build_optimizer(config)
    optimizer.set_param_groups(get_optimizer_param_groups(
        model, cfg.MODEL, config, build_optimizer_schedulers(config)))
    return optimizer


def train(model: torch.nn.Module, optimizer, gradients: List[List[torch.Tensor]]) -> None:
    for step_gradients in gradients:
        optimizer.zero_grad()
        for parameter, gradient in zip(model.parameters(), step_gradients):
            parameter.grad = gradient.clone()
        optimizer.step(where=0.0)


@pytest.mark.parametrize("nesterov", [False, True])
def test_equals_the_loop_bit_for_bit_over_vissl_param_groups(nesterov):
    cfg = demo_config(f"config.OPTIMIZER.nesterov={nesterov}")
    torch.manual_seed(0)
    loop_model = build_model(cfg.MODEL, cfg.OPTIMIZER)
    multi_model = copy.deepcopy(loop_model)
    generator = torch.Generator().manual_seed(1)
    gradients = [[torch.randn(p.shape, generator=generator) for p in loop_model.parameters()]
                 for _ in range(3)]
    loop = optimizer_of(loop_model, cfg, "sgd")
    multi = optimizer_of(multi_model, cfg, OPTIMIZER_NAME)
    assert isinstance(multi, MultiTensorSGD)
    decays = sorted({group["weight_decay"] for group in multi.param_groups})
    assert decays == [0.0, cfg.OPTIMIZER.weight_decay]  # BN and biases apart (regularize_*)
    assert all(group["foreach"] for group in multi.param_groups)
    assert not any(group["foreach"] for group in loop.param_groups)  # torch's CPU default
    train(loop_model, loop, gradients)
    train(multi_model, multi, gradients)
    for (name, expected), actual in zip(loop_model.named_parameters(), multi_model.parameters()):
        assert torch.equal(expected, actual), name
    loop_state, multi_state = (opt.get_classy_state()["optim"]["state"] for opt in (loop, multi))
    for key, state in loop_state.items():
        assert torch.equal(state["momentum_buffer"], multi_state[key]["momentum_buffer"])


def test_a_checkpoint_of_the_loop_path_resumes_on_the_multi_tensor_path():
    """A checkpoint's param groups replace the optimizer's on load; an ``sgd`` run's say
    ``foreach: None``."""
    cfg = demo_config()
    model = build_model(cfg.MODEL, cfg.OPTIMIZER)
    loop = optimizer_of(model, cfg, "sgd")
    multi = optimizer_of(model, cfg, OPTIMIZER_NAME)
    multi.set_classy_state(loop.get_classy_state())
    assert all(group["foreach"] for group in multi.param_groups)

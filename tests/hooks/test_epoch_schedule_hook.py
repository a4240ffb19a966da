"""``EpochScheduleHook``: the learning rate of an epoch resumed in its middle is the epoch's own."""
from types import SimpleNamespace

import torch
from classy_vision.optim import build_optimizer, build_optimizer_schedulers
from vissl.optimizers import get_optimizer_param_groups

from vissl_pirl_plugin.engine.launcher import compose_config
from vissl_pirl_plugin.hooks.epoch_schedule_hook import EpochScheduleHook


def test_a_phase_resumed_midway_gets_the_learning_rate_of_its_start():
    """VISSL sets an epoch's values at ``task.where`` when the phase starts: in a resumed run
    the middle of the epoch (the paper config's cosine then gave the rest of the epoch another
    learning rate, and a resumed run's losses left the uninterrupted run's)."""
    _, cfg = compose_config(["config=pretrain/pirl/pirl_jigsaw_cpu_demo",
                             "config.OPTIMIZER.num_epochs=4"])
    model = torch.nn.Linear(2, 2)
    optimizer = build_optimizer(cfg.OPTIMIZER)
    optimizer.set_param_groups(get_optimizer_param_groups(
        model, cfg.MODEL, cfg.OPTIMIZER, build_optimizer_schedulers(cfg.OPTIMIZER)))
    optimizer.on_epoch(0.25)  # epoch 1 of 4 starts
    epoch_start = [group["lr"] for group in optimizer.param_groups]
    optimizer.on_epoch(0.375)  # what VISSL sets when the run resumes halfway through epoch 1
    assert [group["lr"] for group in optimizer.param_groups] != epoch_start
    task = SimpleNamespace(train=True, train_phase_idx=1, optimizer=optimizer,
                           get_total_training_phases=lambda: 4)
    EpochScheduleHook().on_phase_start(task)
    assert [group["lr"] for group in optimizer.param_groups] == epoch_start

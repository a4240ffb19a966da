"""A VISSL-built pirl_loss stops at its second training step when MemoryBankUpdateHook never
ran (a launch without the plugin's hooks), instead of training with a frozen bank."""
import pytest
import torch
from classy_vision.losses import build_loss
from vissl.config import AttrDict

from vissl_pirl_plugin.hooks.memory_bank_hook import MemoryBankUpdateHook

from test_memory_bank_hook import make_task

LAUNCHERS = (r"frozen at its random initialisation.*VISSL's own tools/run_distributed_engines.py"
             r".*`python tools/run_distributed_engines.py` of the vissl-pirl repository, "
             r"`vissl-pirl-train`")


def vissl_built_loss():
    return build_loss(AttrDict({"name": "pirl_loss", "num_negatives": 3, "num_train_samples": 10,
                                "memory_bank": {"embedding_dim": 4}}))


def step(loss, hook=None):
    output, target = [torch.randn(2, 4, requires_grad=True) for _ in range(2)], torch.tensor([1, 7])
    loss(output, target).backward()
    if hook is not None:
        hook.on_update(make_task(loss, [o.detach() for o in output], target))


def test_a_run_without_the_bank_hook_stops_at_its_second_step():
    loss = vissl_built_loss()
    step(loss)
    with pytest.raises(RuntimeError, match=LAUNCHERS):
        step(loss)


def test_a_run_with_the_bank_hook_trains_on():
    loss, hook = vissl_built_loss(), MemoryBankUpdateHook()
    for _ in range(3):
        step(loss, hook)
    assert loss.bank_updates == 3


def test_evaluation_forwards_do_not_count():
    """VISSL runs test phases under torch.no_grad, where the hook never updates the bank."""
    loss = vissl_built_loss()
    step(loss, MemoryBankUpdateHook())
    with torch.no_grad():
        for _ in range(2):
            loss([torch.randn(2, 4), torch.randn(2, 4)], torch.tensor([1, 7]))
    step(loss, MemoryBankUpdateHook())

"""``pirl_hook_generator``: VISSL's default hooks plus PIRL's memory-bank hook.

VISSL builds hooks with a hard-coded ``default_hook_generator`` that knows
nothing of ``pirl_loss``. Every launch path of this plugin (local, multi-node,
SLURM: see ``launcher.py``) passes this generator instead.
"""
from typing import List

from classy_vision.hooks.classy_hook import ClassyHook
from vissl.config import AttrDict
from vissl.hooks import LogLossMetricsCheckpointHook, default_hook_generator

from vissl_pirl_plugin.memory_bank_hook import MemoryBankUpdateHook


def pirl_hook_generator(cfg: AttrDict) -> List[ClassyHook]:
    """VISSL's hooks, with ``MemoryBankUpdateHook`` when ``LOSS.name`` is ``pirl_loss``.

    The memory-bank hook is placed before VISSL's checkpoint hook, so that a
    checkpoint holds the bank as updated by the step it follows.
    """
    hooks = default_hook_generator(cfg)
    if cfg.LOSS.name == "pirl_loss":
        position = next((i for i, hook in enumerate(hooks)
                         if isinstance(hook, LogLossMetricsCheckpointHook)), len(hooks))
        hooks.insert(position, MemoryBankUpdateHook())
    return hooks

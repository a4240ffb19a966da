"""``pirl_hook_generator``: VISSL's default hooks plus PIRL's.

VISSL builds hooks with a hard-coded ``default_hook_generator`` that knows
nothing of ``pirl_loss``. Every launch path of this plugin (local, multi-node,
SLURM: see ``launcher.py``) passes this generator instead.
"""
from typing import List

from classy_vision.hooks.classy_hook import ClassyHook
from vissl.config import AttrDict
from vissl.hooks import LogLossMetricsCheckpointHook, default_hook_generator

from vissl_pirl_plugin.hooks.knn_monitor_hook import KnnMonitorHook
from vissl_pirl_plugin.hooks.memory_bank_hook import MemoryBankUpdateHook
from vissl_pirl_plugin.hooks.non_finite_guard_hook import NonFiniteGuardHook
from vissl_pirl_plugin.hooks.phase_seed_hook import PhaseSeedHook
from vissl_pirl_plugin.hooks.unreadable_image_hook import UnreadableImageHook


def pirl_hook_generator(cfg: AttrDict) -> List[ClassyHook]:
    """VISSL's hooks and, when ``LOSS.name`` is ``pirl_loss``, the plugin's.

    The plugin's hooks go before VISSL's checkpoint hook: a checkpoint then holds
    the bank as updated by the step it follows, and a NaN stops the run before
    VISSL's hook could save the broken model.
    """
    hooks = default_hook_generator(cfg)
    if cfg.LOSS.name != "pirl_loss":
        return hooks
    bank = cfg.LOSS.pirl_loss.memory_bank
    position = next((i for i, hook in enumerate(hooks)
                     if isinstance(hook, LogLossMetricsCheckpointHook)), len(hooks))
    plugin_hooks: List[ClassyHook] = [
        PhaseSeedHook(cfg.SEED_VALUE),
        UnreadableImageHook(),
        NonFiniteGuardHook(),
        MemoryBankUpdateHook(bank.get("consistency_check_period", 0),
                             cfg.CHECKPOINT.CHECKPOINT_ITER_FREQUENCY),
    ]
    knn_monitor = KnnMonitorHook.from_config(cfg)  # on with HOOKS.KNN_MONITOR.VAL_DATA_PATH
    if knn_monitor is not None:
        plugin_hooks.append(knn_monitor)
    hooks[position:position] = plugin_hooks
    return hooks

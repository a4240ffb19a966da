"""``pirl_hook_generator``: VISSL's default hooks plus PIRL's.

VISSL builds hooks with a hard-coded ``default_hook_generator`` that knows
nothing of ``pirl_loss``. Every launch path of this plugin (local, multi-node,
SLURM: see ``launcher.py``) passes this generator instead.
"""
from typing import List

from classy_vision.hooks.classy_hook import ClassyHook
from vissl.config import AttrDict
from vissl.hooks import (
    CheckNanLossHook,
    CheckNanModelOutputHook,
    LogLossMetricsCheckpointHook,
    default_hook_generator,
)

from vissl_pirl_plugin.hooks.checkpoint_pruning_hook import CheckpointPruningHook
from vissl_pirl_plugin.hooks.epoch_schedule_hook import EpochScheduleHook
from vissl_pirl_plugin.hooks.guarded_checkpoint_hook import GuardedCheckpointHook
from vissl_pirl_plugin.hooks.knn_monitor_hook import KnnMonitorHook
from vissl_pirl_plugin.hooks.memory_bank_hook import MemoryBankUpdateHook
from vissl_pirl_plugin.hooks.model_compile_hook import ModelCompileHook, compile_settings
from vissl_pirl_plugin.hooks.non_finite_guard_hook import NonFiniteGuardHook
from vissl_pirl_plugin.hooks.phase_seed_hook import PhaseSeedHook
from vissl_pirl_plugin.hooks.unreadable_image_hook import UnreadableImageHook


KEEP_ITER_CHECKPOINTS = "KEEP_LAST_ITER_CHECKPOINTS"
# VISSL's own non-finite checks, each on its own rank after a host read (guarded_checkpoint_hook)
VISSL_NAN_HOOKS = (CheckNanModelOutputHook, CheckNanLossHook)


def pirl_hook_generator(cfg: AttrDict) -> List[ClassyHook]:
    """VISSL's hooks and, when ``LOSS.name`` is ``pirl_loss``, the plugin's.

    The plugin's hooks go before VISSL's checkpoint hook: a checkpoint then holds
    the bank as updated by the step it follows, and a NaN stops the run before
    VISSL's hook could save the broken model. With ``pirl_loss`` that hook is
    ``GuardedCheckpointHook`` and VISSL's NaN hooks are left out: ``NonFiniteGuardHook``
    makes their checks on every rank together. With ``CHECKPOINT.KEEP_LAST_ITER_CHECKPOINTS``
    N > 0 (any loss), ``CheckpointPruningHook`` goes right after it, to delete what it
    wrote before the newest N iteration checkpoints. ``EpochScheduleHook`` (any loss) goes
    first, and before it ``ModelCompileHook`` with ``MODEL.COMPILE.USE_COMPILE``.
    """
    hooks = default_hook_generator(cfg)
    pirl = cfg.LOSS.name == "pirl_loss"
    if pirl:  # NonFiniteGuardHook makes VISSL's per-rank NaN checks, on every rank together
        hooks = [hook for hook in hooks if not isinstance(hook, VISSL_NAN_HOOKS)]
    position = next((i for i, hook in enumerate(hooks)
                     if isinstance(hook, LogLossMetricsCheckpointHook)), len(hooks))
    if pirl and position < len(hooks):
        hooks[position] = GuardedCheckpointHook(hooks[position].world_size)
    keep = cfg.CHECKPOINT.get(KEEP_ITER_CHECKPOINTS, -1)
    if keep > 0:
        hooks.insert(position + 1, CheckpointPruningHook(
            keep, cfg.CHECKPOINT.CHECKPOINT_ITER_FREQUENCY))
    hooks.insert(0, EpochScheduleHook())
    compile_model = compile_settings(cfg.MODEL)
    if compile_model["USE_COMPILE"]:
        hooks.insert(0, ModelCompileHook(compile_model["MODE"]))
    if not pirl:
        return hooks
    bank = cfg.LOSS.pirl_loss.memory_bank
    plugin_hooks: List[ClassyHook] = [
        PhaseSeedHook(cfg.SEED_VALUE),
        UnreadableImageHook(),
        NonFiniteGuardHook(cfg.LOSS.pirl_loss.get("check_period", 1)),
        MemoryBankUpdateHook(bank.get("consistency_check_period", 0)),
    ]
    knn_monitor = KnnMonitorHook.from_config(cfg)  # on with HOOKS.KNN_MONITOR.VAL_DATA_PATH
    if knn_monitor is not None:
        plugin_hooks.append(knn_monitor)
    hooks[position:position] = plugin_hooks
    return hooks

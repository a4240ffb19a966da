"""``GuardedCheckpointHook``: VISSL's checkpoint hook, without its own per-step check of the model
output, which ``NonFiniteGuardHook`` makes for ``pirl_loss`` on every rank together.

VISSL 0.1.6 checks for a non-finite model output in three hooks, each after a host read of the
output every step and each on its own rank: ``LogLossMetricsCheckpointHook.on_forward`` writes
an iteration checkpoint of the broken model (which auto-resume then prefers);
``CheckNanModelOutputHook`` (``HOOKS.CHECK_NAN``) does the same and dies with an
``AttributeError``; ``CheckNanLossHook`` raises on its rank alone, leaving the others in their
next collective. With ``pirl_loss``, ``NonFiniteGuardHook`` records these failures on the device
and stops every rank at the same step, before anything is saved, without a host sync in the
step (docs/performance.md, "Host syncs in the step"). So ``pirl_hook_generator`` puts this hook
in place of VISSL's checkpoint hook and leaves the other two out. Logging, meters and
checkpoints stay VISSL's, unchanged.
"""
from classy_vision.hooks.classy_hook import ClassyHook
from vissl.hooks import LogLossMetricsCheckpointHook


class GuardedCheckpointHook(LogLossMetricsCheckpointHook):
    on_forward = ClassyHook._noop  # NonFiniteGuardHook checks the model output

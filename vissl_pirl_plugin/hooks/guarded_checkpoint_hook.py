"""``GuardedCheckpointHook``: VISSL's checkpoint hook, without its own per-step check of the model
output, which ``NonFiniteGuardHook`` makes for ``pirl_loss`` on every rank together.

VISSL 0.1.6 checks for non-finite values in three hooks, each after a host read every step:
``LogLossMetricsCheckpointHook.on_forward`` and ``CheckNanModelOutputHook`` (``HOOKS.CHECK_NAN``)
check the model output on its own rank, and on a non-finite one the first writes an iteration
checkpoint of the broken model (which auto-resume then prefers) and the second dies with an
``AttributeError``, leaving the other ranks in their next collective; ``CheckNanLossHook``
checks the loss averaged over the ranks, as the guard does. With ``pirl_loss``,
``NonFiniteGuardHook`` records these failures on the device and stops every rank at the same
step, before anything is saved, without a host sync in the step (docs/performance.md, "Host
syncs in the step"). So ``pirl_hook_generator`` puts this hook in place of VISSL's checkpoint
hook and leaves the other two out. What is lost with them: VISSL's debugging dumps of a
non-finite output (``rank{R}_model_output.pth``, ``rank{R}_input_sample.pth`` and the broken
model's checkpoint); the guard's error names the step, the rank and the check instead. Logging,
meters and checkpoints otherwise stay VISSL's, unchanged.
"""
from classy_vision.hooks.classy_hook import ClassyHook
from vissl.hooks import LogLossMetricsCheckpointHook


class GuardedCheckpointHook(LogLossMetricsCheckpointHook):
    on_forward = ClassyHook._noop  # NonFiniteGuardHook checks the model output

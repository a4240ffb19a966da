"""When VISSL's checkpoint hook writes a checkpoint, so that the plugin's hooks act only then.

Mirrors ``LogLossMetricsCheckpointHook._checkpoint_model`` (``vissl/hooks/log_hooks.py``):
an iteration checkpoint in ``on_step`` every ``CHECKPOINT_ITER_FREQUENCY`` training steps
(0: never), a phase checkpoint in ``on_phase_end`` every ``CHECKPOINT_FREQUENCY`` training
epochs and after the last one.
"""
from vissl.utils.checkpoint import is_checkpoint_phase


def writes_iteration_checkpoint(task) -> bool:
    """Whether VISSL's ``on_step`` of this step saves a checkpoint."""
    frequency = task.config["CHECKPOINT"]["CHECKPOINT_ITER_FREQUENCY"]
    return bool(task.train and frequency > 0 and is_checkpoint_phase(
        task.iteration, frequency, task.train_phase_idx, task.num_train_phases, "iteration"))


def writes_phase_checkpoint(task) -> bool:
    """Whether VISSL's ``on_phase_end`` of this phase saves a checkpoint."""
    final = task.train_phase_idx == task.num_train_phases - 1
    return bool(task.train and (final or is_checkpoint_phase(
        task.train_phase_idx, task.config["CHECKPOINT"]["CHECKPOINT_FREQUENCY"],
        task.train_phase_idx, task.num_train_phases, "phase")))

"""``EpochScheduleHook``: a run resumed in the middle of an epoch keeps that epoch's learning rate.

VISSL sets the values of the schedules updated once per epoch (``update_interval: epoch``, the
paper config's cosine learning rate) when a training phase starts, from how far training is
then (``task.where``). A run resumed from an iteration checkpoint starts its first phase in the
middle of the epoch, and VISSL takes the schedule's value there: the rest of the epoch trained
with another learning rate than the uninterrupted run (at where 0.5 of a one-epoch run, the
cosine's middle instead of its start). This hook sets the schedules again at every training
phase's start from where the phase itself started, ``train_phase_idx / num_train_phases``, the
same float VISSL computes at a phase's start in an uninterrupted run (both are the correctly
rounded ratio of the same two integers), so that nothing changes there.
"""
from vissl_pirl_plugin.hooks.noop_hook import NoopHook


class EpochScheduleHook(NoopHook):
    def on_phase_start(self, task) -> None:
        if task.train and task.train_phase_idx >= 0:
            task.optimizer.on_epoch(task.train_phase_idx / task.get_total_training_phases())

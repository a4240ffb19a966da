"""``NoopHook``: a ClassyHook whose every event does nothing; the plugin's hooks override a few."""
from classy_vision.hooks.classy_hook import ClassyHook


class NoopHook(ClassyHook):
    on_start = ClassyHook._noop
    on_phase_start = ClassyHook._noop
    on_forward = ClassyHook._noop
    on_loss_and_meter = ClassyHook._noop
    on_backward = ClassyHook._noop
    on_update = ClassyHook._noop
    on_step = ClassyHook._noop
    on_phase_end = ClassyHook._noop
    on_end = ClassyHook._noop

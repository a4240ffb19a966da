"""``UnreadableImageHook``: counts and names the images that could not be read.

``RobustDiskImageDataset`` replaces an undecodable file by a grey placeholder
marked invalid; ``pirl_collator`` keeps it out of the loss and the memory bank.
This hook logs each such file once, with its path, when it is first met, and
the number of unreadable samples at the end of every epoch, so that a broken
dataset is visible without stopping a long run. The path comes from
``RobustDiskImageDataset.image_path``, which neither scans the folder nor loads a
file list, so the other ranks do not wait on the lookup at the next collective.
"""
import logging
from typing import Set

from vissl_pirl_plugin.hooks.noop_hook import NoopHook


class UnreadableImageHook(NoopHook):
    def __init__(self) -> None:
        super().__init__()
        self.reported: Set[int] = set()
        self.count_this_phase = 0

    def on_phase_start(self, task) -> None:
        self.count_this_phase = 0

    def on_forward(self, task) -> None:
        sample = task.last_batch.sample
        if "data_idx" not in sample or "data_valid" not in sample:
            return
        # VISSL's train step hands extra collator keys over as the collator's lists
        valid, data_idx = _first(sample["data_valid"]), _first(sample["data_idx"])
        failed = data_idx[~valid.bool()].tolist()
        self.count_this_phase += len(failed)
        for index in failed:
            if index not in self.reported:
                self.reported.add(index)
                logging.warning(f"Unreadable image left out of training (dataset index {index}): "
                                f"{self.path_of(task, index)}")

    def on_phase_end(self, task) -> None:
        if self.count_this_phase:
            logging.warning(
                f"{self.count_this_phase} unreadable samples in this epoch ({len(self.reported)} "
                "distinct files so far) were left out of the loss and the memory bank.")

    @staticmethod
    def path_of(task, index: int) -> str:
        source = task.datasets["train"].data_objs[0]
        return source.image_path(index) if hasattr(source, "image_path") else "(path unknown)"


def _first(value):
    return value[0] if isinstance(value, (list, tuple)) else value

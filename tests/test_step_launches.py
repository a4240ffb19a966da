"""Kernel launches per training step (issue 26): a ceiling per part, so that a change that makes
the step launch more kernels fails here (counts, not timings; ``make bench``'s ``launches`` part
prints the table of docs/performance.md)."""
import sys

import pytest

from conftest import REPO, write_image_folder

sys.path.insert(0, str(REPO / "benchmarks"))
import step_launches  # noqa: E402

pytestmark = pytest.mark.slow

# augmentation=on_device, sgd_multi_tensor, eager, measured on the CPU with torch 2.15: a part
# over its ceiling launches more than it did; lower a ceiling when a change cuts its launches.
# The augmentation runs eager here (on the CPU; compiling it would take a minute of CI): its
# compiled count, what CUDA runs, has its own ceiling of 100 (tests/data/test_device_pirl_augmentation.py)
CEILINGS = {"augmentation": 1735, "trunk_forward": 452, "heads": 3, "loss": 86, "backward": 585,
            "optimizer": 14, "hooks": 74, "vissl_step": 3}


def test_the_paper_configs_step_stays_under_its_launch_ceilings(tmp_path):
    images = write_image_folder(tmp_path / "images", num_images=8)
    counted = step_launches.count_in_a_process(images, tmp_path, [step_launches.ON_DEVICE])
    over = {part: f"{counted['parts'][part]} > {ceiling}"
            for part, ceiling in CEILINGS.items() if counted["parts"][part] > ceiling}
    assert not over, f"more kernel launches per step than before: {over}"
    # every launch went to one part, or to the loader, or was one of VISSL's profiler markers
    assert (counted["total"] + counted["loader"] + counted["profiler_markers"]
            == counted["counted"])
    assert counted["loader"] > 0 and counted["profiler_markers"] > 0  # VISSL's, torch.optim's

"""A plugin config launched with VISSL's own tools/run_distributed_engines.py (slow).

The components register when Hydra composes the config, in the launching process and in the
workers VISSL spawns; without the plugin's hooks the run stops at its second step with a
message naming the plugin's launcher, instead of training with a frozen memory bank."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import vissl

from conftest import write_image_folder
from test_training_e2e import TIMEOUT, paper_config_on_cpu

pytestmark = pytest.mark.slow

VISSL_LAUNCHER = Path(vissl.__file__).resolve().parents[1] / "tools" / "run_distributed_engines.py"


def test_vissl_launcher_registers_the_plugin_and_stops_without_its_hooks(tmp_path):
    images = write_image_folder(tmp_path / "images", num_images=8)
    overrides = paper_config_on_cpu(images, tmp_path / "ckpt",
                                    "config.DISTRIBUTED.NUM_PROC_PER_NODE=2",
                                    f"config.DATA.TRAIN.LABEL_PATHS=[{images}]")
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    # VISSL's script unchanged (it imports pkg_resources: the lock keeps setuptools < 81)
    result = subprocess.run([sys.executable, str(VISSL_LAUNCHER), *overrides], cwd=tmp_path,
                            env=env, capture_output=True, text=True, timeout=TIMEOUT)
    log = result.stdout + result.stderr
    assert result.returncode != 0, log[-4000:]
    assert "Unknown" not in log, log[-4000:]  # pirl_loss, pirl_jigsaw_head, ... were found
    assert "iter: 0;" in log and "iter: 1;" not in log, log[-4000:]  # stopped at step 2
    assert "MemoryBankUpdateHook is not running" in log, log[-4000:]
    assert "`python tools/run_distributed_engines.py` of the vissl-pirl repository" in log
    assert not (tmp_path / "ckpt" / "model_final_checkpoint_phase0.torch").exists()

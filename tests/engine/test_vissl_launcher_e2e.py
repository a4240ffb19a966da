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

from conftest import REPO, write_image_folder
from test_training_e2e import TIMEOUT, paper_config_on_cpu

pytestmark = pytest.mark.slow

VISSL_LAUNCHER = Path(vissl.__file__).resolve().parents[1] / "tools" / "run_distributed_engines.py"
# VISSL's script imports pkg_resources, which setuptools >= 81 no longer ships: users run it
# where setuptools still has it. Here the plugin's stand-in is loaded from its file (the plugin
# package itself is not imported), then VISSL's script runs unchanged: its hydra_main, which is
# all that its `if __name__ == "__main__"` block calls (run as a module other than __main__, so
# that the spawned workers, which cannot see the stand-in, do not import it again).
WITH_PKG_RESOURCES = f"""
import importlib.util, sys
def load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
compat = load("compat_file", {str(REPO / 'vissl_pirl_plugin' / 'vissl_compat.py')!r})
if importlib.util.find_spec("pkg_resources") is None:
    sys.modules["pkg_resources"] = compat.pkg_resources_stand_in()
load("vissl_launcher", sys.argv[1]).hydra_main(overrides=sys.argv[2:])
"""


def test_vissl_launcher_registers_the_plugin_and_stops_without_its_hooks(tmp_path):
    images = write_image_folder(tmp_path / "images", num_images=8)
    overrides = paper_config_on_cpu(images, tmp_path / "ckpt",
                                    "config.DISTRIBUTED.NUM_PROC_PER_NODE=2",
                                    f"config.DATA.TRAIN.LABEL_PATHS=[{images}]")
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    result = subprocess.run([sys.executable, "-c", WITH_PKG_RESOURCES, str(VISSL_LAUNCHER),
                             *overrides], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=TIMEOUT)
    log = result.stdout + result.stderr
    assert result.returncode != 0, log[-4000:]
    assert "Unknown" not in log, log[-4000:]  # pirl_loss, pirl_jigsaw_head, ... were found
    assert "iter: 0;" in log and "iter: 1;" not in log, log[-4000:]  # stopped at step 2
    assert "MemoryBankUpdateHook is not running" in log, log[-4000:]
    assert "`python tools/run_distributed_engines.py` of the vissl-pirl repository" in log
    assert not (tmp_path / "ckpt" / "model_final_checkpoint_phase0.torch").exists()

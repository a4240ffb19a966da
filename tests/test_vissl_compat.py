"""VISSL 0.1.6 on today's stack (numpy 2, setuptools >= 81): each patch of
``vissl_pirl_plugin.utils.vissl_compat`` is needed by the VISSL code path it covers, and the VOC07 SVM
gives exactly the numbers of the old stack (Python 3.11, numpy 1.23.5, scikit-learn 1.7.2).

This module imports no VISSL or plugin code at the top, so that ``svm_parity_features`` and
``svm_average_precisions`` also run on the old stack, where the pinned numbers were measured::

    python -c "import sys; sys.path.insert(0, 'tests'); import test_vissl_compat as t; \
print(repr(t.svm_average_precisions(t.svm_parity_features(), 'tmp_svm')))"
"""
import importlib
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

# measured with VISSL's SVMTrainer, unpatched, on the old stack (numpy 1.23.5, sklearn 1.7.2)
OLD_STACK_APS = [0.7171008004341337, 0.8700022336385973, 0.878848003848004, 0.7724994613229907]

SVM_CONFIG = {
    "normalize": True, "cls_list": [], "loss": "squared_hinge", "penalty": "l2", "dual": True,
    "max_iter": 2000, "cross_val_folds": 2, "force_retrain": False,
    "costs": {"costs_list": [0.1, 1.0], "base": -1.0, "power_range": [4, 20]},
}


def svm_parity_features():
    """Fixed features with VISSL's VOC labels (1 positive, 0 negative, -1 difficult)."""
    rng = np.random.RandomState(7)
    centres = rng.normal(0, 1, (4, 16))

    def split(count):
        clusters = np.arange(count) % 4
        features = centres[clusters] + rng.normal(0, 2.5, (count, 16))
        targets = np.zeros((count, 4), dtype=np.int64)
        targets[np.arange(count), clusters] = 1
        targets[rng.rand(count, 4) < 0.05] = -1
        return features.astype(np.float32), targets

    return split(80), split(48)


def svm_average_precisions(data, output_dir: str):
    """VISSL's SVM trainer, trained and tested on ``data``: the per-class test APs."""
    from vissl.config import AttrDict
    from vissl.utils.svm_utils.svm_trainer import SVMTrainer

    (train_x, train_y), (test_x, test_y) = data
    trainer = SVMTrainer(AttrDict(SVM_CONFIG), layer="res5", output_dir=output_dir)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # liblinear's convergence warnings
        trainer.train(train_x, train_y)
        trainer.test(test_x, test_y)
    return np.load(Path(output_dir) / "res5" / "test_ap.npy").ravel().tolist()


def test_svm_average_precisions_are_those_of_the_old_stack(tmp_path):
    import vissl_pirl_plugin  # noqa: F401  (applies the patches)

    assert svm_average_precisions(svm_parity_features(), str(tmp_path)) == OLD_STACK_APS


def test_svm_trainers_get_a_scalar_average_precision():
    import vissl_pirl_plugin  # noqa: F401
    from vissl.utils.svm_utils import evaluate, svm_low_shot_trainer, svm_trainer

    targets, scores = np.array([1.0, -1.0, 1.0, -1.0]), np.array([0.9, 0.8, 0.4, 0.1])
    ap = svm_trainer.get_precision_recall(targets, scores)[3]
    assert np.shape(ap) == () and np.shape(evaluate.get_precision_recall(targets, scores)[3]) == (1,)
    matrix = np.zeros((2, 1))
    matrix[0][0] = ap  # what svm_trainer.py:256 does; numpy >= 2.4 rejects a shape-(1,) value
    assert matrix[0][0] == evaluate.get_precision_recall(targets, scores)[3][0]
    assert svm_low_shot_trainer.get_precision_recall(targets, scores)[3].shape == ()


def test_mean_ap_meter_and_precision_recall_run_without_np_float():
    import torch

    import vissl_pirl_plugin  # noqa: F401
    from vissl.config import AttrDict
    from vissl.meters.mean_ap_meter import MeanAPMeter
    from vissl.utils.svm_utils.evaluate import get_precision_recall

    assert not hasattr(np, "float")  # numpy itself stays unpatched
    assert get_precision_recall(np.array([1.0, 0.0]), np.array([0.9, 0.1]))[3] == 1.0
    meter = MeanAPMeter(AttrDict({"num_classes": 2, "max_cpu_capacity": -1}))
    meter.update(torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3]]),
                 torch.tensor([[1, 0], [0, 1], [1, -1]]))
    assert meter.value["mAP"] == 1.0


def test_patches_are_idempotent_and_target_only_their_modules():
    from vissl_pirl_plugin.utils import vissl_compat

    vissl_compat.apply()
    vissl_compat.apply()
    patchers = [f for f in sys.meta_path if isinstance(f, vissl_compat._PostImportPatcher)]
    assert len(patchers) == 1
    svm_trainer = importlib.import_module("vissl.utils.svm_utils.svm_trainer")
    wrapped = svm_trainer.get_precision_recall
    vissl_compat.apply()
    assert svm_trainer.get_precision_recall is wrapped  # not wrapped twice
    assert importlib.import_module("vissl.utils.io").np is np  # other modules see numpy itself


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)


@pytest.mark.parametrize("order", ["vissl first", "plugin first"])
def test_import_vissl_works_in_any_order_with_the_real_pkg_resources(order):
    """The installed environment (setuptools < 81): VISSL's own ``import pkg_resources``
    succeeds without the plugin, and every library gets setuptools' real module."""
    imports = ["import vissl", "from vissl.utils.hydra_config import compose_hydra_configuration",
               "import vissl.utils.misc, vissl.utils.collect_env"]
    plugin = ["import vissl_pirl_plugin"]
    code = "\n".join([*(imports + plugin if order == "vissl first" else plugin + imports),
                      "import pkg_resources",
                      "assert hasattr(pkg_resources, 'resource_isdir'), 'a partial pkg_resources'",
                      "assert vissl.utils.misc.pkg_resources is pkg_resources"])
    result = run_python(code)
    assert result.returncode == 0, result.stderr[-2000:]


# setuptools >= 81 simulated: pkg_resources cannot be imported at all
WITHOUT_PKG_RESOURCES = """
import importlib.abc, sys
class NoPkgResources(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "pkg_resources" or name.startswith("pkg_resources."):
            raise ModuleNotFoundError("No module named 'pkg_resources'", name=name)
sys.meta_path.insert(0, NoPkgResources())
"""


def test_without_pkg_resources_vissl_alone_gets_the_stand_in():
    """Where setuptools no longer ships pkg_resources: VISSL's ``import pkg_resources``
    (misc.py:16, collect_env.py:12) and the dataset catalog look-up it serves (misc.py:233)
    work, yet any other code still gets an ImportError, never a partial module."""
    code = WITHOUT_PKG_RESOURCES + (
        "import os, vissl_pirl_plugin\n"
        "from vissl.utils.misc import get_json_data_catalog_file\n"
        "from vissl.utils.collect_env import collect_env_info\n"
        "import configs\n"  # VISSL's package of configs
        "assert get_json_data_catalog_file() == os.path.join(\n"
        "    os.path.dirname(configs.__file__), 'config', 'dataset_catalog.json')\n"
        "import vissl.utils.misc as misc\n"
        "assert misc.pkg_resources.get_distribution('torch').version\n"
        "collect_env_info()\n"
        "assert 'pkg_resources' not in sys.modules\n"
        "try:\n"
        "    import pkg_resources\n"
        "except ImportError:\n"
        "    print('ImportError')\n")
    result = run_python(code)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split()[-1] == "ImportError"

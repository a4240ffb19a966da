"""The linear probes used to evaluate frozen trunks."""
import numpy as np
import pytest
import torch

from vissl_pirl_plugin.engine.launcher import compose_config
from vissl_pirl_plugin.tools.linear_probe import identity_accuracy, probe_accuracy, run_probes
from vissl_pirl_plugin.tools.trained_model import load_model, run_config

from conftest import write_image_folder

DEMO = "config=pretrain/pirl/pirl_jigsaw_cpu_demo"


def test_probe_separates_separable_features_and_not_noise():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 20)
    separable = rng.normal(size=(80, 16)) + 4 * np.eye(16)[labels]
    assert probe_accuracy(separable, labels) > 0.95
    assert probe_accuracy(rng.normal(size=(80, 16)), labels) < 0.6


def test_identity_probe_is_fit_on_the_first_views_and_tested_on_the_rest():
    rng = np.random.default_rng(0)
    images, views = 10, 3
    identity = np.repeat(np.arange(images), 2 * views)
    invariant = rng.normal(size=(images, 32))[identity] + 0.05 * rng.normal(size=(60, 32))
    assert identity_accuracy(invariant, views) == 1.0
    # views that share nothing with their image: chance level
    assert identity_accuracy(rng.normal(size=(60, 32)), views) < 0.4


def demo_config(tmp_path):
    _, config = compose_config([DEMO, f"config.CHECKPOINT.DIR={tmp_path / 'ckpt'}"])
    return config


def test_probes_of_a_random_trunk_report_every_stage(tmp_path):
    folder = write_image_folder(tmp_path / "images", num_images=8, size=72)
    results = run_probes(demo_config(tmp_path), None, folder, stages=("res4", "res5"), views=2)
    assert set(results) == {"category", "identity"}
    for accuracies in results.values():
        assert set(accuracies) == {"res4", "res5"}
        assert all(0.0 <= value <= 1.0 for value in accuracies.values())


def test_unknown_probe_is_refused(tmp_path):
    with pytest.raises(ValueError, match="Unknown probe"):
        run_probes(demo_config(tmp_path), None, tmp_path, probes=("knn",))


def test_model_rebuilt_from_the_run_config(tmp_path):
    config = demo_config(tmp_path)
    saved = load_model(config, seed=1)
    checkpoint = tmp_path / "model.torch"
    torch.save({"classy_state_dict": {"base_model": saved.get_classy_state()}}, checkpoint)
    loaded = run_config(tmp_path / "ckpt" / "train_config.yaml")
    restored = load_model(loaded, checkpoint, seed=2)
    for (name, a), b in zip(saved.state_dict().items(), restored.state_dict().values()):
        assert torch.equal(a, b), name


def test_a_file_that_is_not_a_checkpoint_is_refused(tmp_path):
    torch.save({"weights": 1}, tmp_path / "x.torch")
    with pytest.raises(ValueError, match="is not a VISSL checkpoint"):
        load_model(demo_config(tmp_path), tmp_path / "x.torch")


def test_a_missing_run_config_names_the_file_to_pass(tmp_path):
    with pytest.raises(FileNotFoundError, match="train_config.yaml"):
        run_config(tmp_path / "train_config.yaml")

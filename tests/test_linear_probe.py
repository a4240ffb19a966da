"""The linear probe used to evaluate frozen trunks."""
import numpy as np
import pytest

from vissl_pirl_plugin.linear_probe import extract_features, load_trunk, probe_accuracy

from conftest import write_image_folder


def test_probe_separates_separable_features_and_not_noise():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 20)
    separable = rng.normal(size=(80, 16)) + 4 * np.eye(16)[labels]
    assert probe_accuracy(separable, labels) > 0.95
    assert probe_accuracy(rng.normal(size=(80, 16)), labels) < 0.6


def test_features_of_a_folder_from_a_random_trunk(tmp_path):
    folder = write_image_folder(tmp_path / "images", num_images=4, size=40)
    features, labels = extract_features(load_trunk(None, []), folder, crop=32)
    assert features.shape == (4, 2048) and labels.tolist() == [0, 0, 1, 1]


def test_a_file_that_is_not_a_checkpoint_is_refused(tmp_path):
    import torch

    torch.save({"weights": 1}, tmp_path / "x.torch")
    with pytest.raises(ValueError, match="is not a VISSL checkpoint"):
        load_trunk(tmp_path / "x.torch", [])

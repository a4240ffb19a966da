"""Checkpoints are loaded with weights_only=True: a file that would run code is refused by every
loader of the plugin, and nothing in it runs."""
from pathlib import Path

import pytest
import torch

from vissl_pirl_plugin.engine import launcher
from vissl_pirl_plugin.engine.checkpoint_loading import (
    UnsafeCheckpointError,
    load_checkpoint_safely,
)
from vissl_pirl_plugin.engine.config_validation import prepare_data
from vissl_pirl_plugin.tools import convert_checkpoint, trained_model

PAPER = "config=pretrain/pirl/pirl_jigsaw_4node_resnet50"


class WritesAFile:
    """Unpickling calls ``exec``, which writes ``marker``: what a malicious checkpoint does."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({str(self.marker)!r}, 'w').write('ran')",)


@pytest.fixture
def crafted_checkpoint(tmp_path):
    """A VISSL-shaped checkpoint with a code-running object in its loss state."""
    marker = tmp_path / "written_by_the_checkpoint"
    folder = tmp_path / "ckpt"
    folder.mkdir()
    path = folder / "model_phase0.torch"
    torch.save({"classy_state_dict": {"base_model": {"model": {"trunk": {}, "heads": {}}}},
                "loss": {"memory_bank.embeddings": torch.zeros(4, 128),
                         "extra": WritesAFile(marker)}}, path)
    (folder / "checkpoint.torch").symlink_to(path)
    return path, marker


def assert_refused(call, marker: Path) -> None:
    with pytest.raises(UnsafeCheckpointError,
                       match=r"\.torch was not loaded: it holds a reference to exec.*could "
                             r"run arbitrary code.*If you trust the file's source"):
        call()
    assert not marker.exists()


def test_the_crafted_checkpoint_runs_code_when_loaded_unsafely(crafted_checkpoint):
    path, marker = crafted_checkpoint
    torch.load(path, weights_only=False)
    assert marker.read_text() == "ran"


def test_safe_loading_refuses_it(crafted_checkpoint):
    path, marker = crafted_checkpoint
    assert_refused(lambda: load_checkpoint_safely(path), marker)


def test_convert_checkpoint_refuses_it(crafted_checkpoint, tmp_path):
    path, marker = crafted_checkpoint
    assert_refused(lambda: convert_checkpoint.main([str(path), str(tmp_path / "out.pth")]),
                   marker)
    assert not (tmp_path / "out.pth").exists()


def test_trained_model_refuses_it(crafted_checkpoint, tmp_path, monkeypatch):
    path, marker = crafted_checkpoint
    monkeypatch.chdir(tmp_path)
    _, cfg = launcher.compose_config([PAPER, "+config/pretrain/pirl/trunk=resnet18"])
    assert_refused(lambda: trained_model.load_model(cfg, path), marker)


def test_resume_check_refuses_it(crafted_checkpoint, image_folder, tmp_path, monkeypatch):
    path, marker = crafted_checkpoint
    monkeypatch.chdir(tmp_path)
    _, cfg = launcher.compose_config([PAPER, f"config.DATA.TRAIN.DATA_PATHS=[{image_folder}]",
                                      "config.LOSS.pirl_loss.num_negatives=2",
                                      f"config.CHECKPOINT.DIR={path.parent}"])
    assert_refused(lambda: prepare_data(cfg), marker)


def test_tensors_and_plain_containers_load(tmp_path):
    state = {"loss": {"memory_bank.embeddings": torch.ones(4, 128), "log_norm_constant":
                      torch.tensor(3.0)}, "iteration": 7, "type": "consolidated", "ids": [1, 2]}
    torch.save(state, tmp_path / "ok.torch")
    loaded = load_checkpoint_safely(tmp_path / "ok.torch")
    assert loaded["iteration"] == 7 and loaded["ids"] == [1, 2]
    assert torch.equal(loaded["loss"]["memory_bank.embeddings"], torch.ones(4, 128))

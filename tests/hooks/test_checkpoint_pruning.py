"""Only the newest CHECKPOINT.KEEP_LAST_ITER_CHECKPOINTS iteration checkpoints stay on disk."""
from pathlib import Path
from types import SimpleNamespace
from typing import List

import pytest

from vissl_pirl_plugin.engine import launcher
from vissl_pirl_plugin.engine.checkpoint_loading import load_checkpoint_safely
from vissl_pirl_plugin.engine.config_validation import validate_config
from vissl_pirl_plugin.hooks.checkpoint_pruning_hook import (
    CheckpointPruningHook,
    stale_iteration_checkpoints,
)
from vissl_pirl_plugin.hooks.hook_generator import pirl_hook_generator
from vissl.hooks import LogLossMetricsCheckpointHook

from conftest import write_image_folder

PAPER = "config=pretrain/pirl/pirl_jigsaw_4node_resnet50"
PHASES = ["model_phase0.torch", "model_phase10.torch", "model_final_checkpoint_phase799.torch"]


def checkpoint_folder(folder: Path, iterations: List[int], linked: str) -> Path:
    """Empty files named as VISSL names its checkpoints, and checkpoint.torch -> ``linked``."""
    folder.mkdir(exist_ok=True)
    for name in [*PHASES, *(f"model_iteration{i}.torch" for i in iterations)]:
        (folder / name).touch()
    (folder / "checkpoint.torch").symlink_to(linked)
    return folder


def names(paths: List[Path]) -> List[str]:
    return [path.name for path in paths]


def test_iteration_checkpoints_beyond_the_newest_two_are_stale(tmp_path):
    folder = checkpoint_folder(tmp_path, [500, 1000, 1500, 2000, 2500],
                               str(tmp_path / "model_iteration2500.torch"))
    # by step, not by name: "model_iteration500" sorts after "model_iteration2000" as text
    assert names(stale_iteration_checkpoints(folder, keep=2)) == [
        "model_iteration1000.torch", "model_iteration1500.torch", "model_iteration500.torch"]
    assert stale_iteration_checkpoints(folder, keep=5) == []


def test_the_linked_checkpoint_is_never_stale(tmp_path):
    """E.g. a run resumed from an older checkpoint, or a relative link."""
    folder = checkpoint_folder(tmp_path, [500, 1000, 1500], "model_iteration500.torch")
    assert names(stale_iteration_checkpoints(folder, keep=1)) == ["model_iteration1000.torch"]


def test_the_shards_of_a_stale_checkpoint_go_with_it(tmp_path):
    folder = checkpoint_folder(tmp_path, [500, 1000], str(tmp_path / "model_iteration1000.torch"))
    for step in (500, 1000):
        for rank in (0, 1):
            (folder / f"model_iteration{step}_shard{rank}.torch").touch()
    assert names(stale_iteration_checkpoints(folder, keep=1)) == [
        "model_iteration500.torch", "model_iteration500_shard0.torch",
        "model_iteration500_shard1.torch"]


def test_the_hook_prunes_after_checkpointing_steps_and_epochs(tmp_path):
    folder = checkpoint_folder(tmp_path, [2, 4, 6], str(tmp_path / "model_iteration6.torch"))
    hook = CheckpointPruningHook(keep=2, checkpoint_iter_frequency=2)
    task = SimpleNamespace(train=True, iteration=7, checkpoint_folder=str(folder))
    hook.on_step(task)  # VISSL wrote nothing at step 7
    assert (folder / "model_iteration2.torch").exists()
    task.iteration = 8
    hook.on_step(task)
    assert not (folder / "model_iteration2.torch").exists()
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [*PHASES, "checkpoint.torch", "model_iteration4.torch", "model_iteration6.torch"])
    (folder / "model_iteration8.torch").touch()
    hook.on_phase_end(task)
    assert not (folder / "model_iteration4.torch").exists()


def test_the_paper_config_keeps_two_after_vissls_checkpoint_hook(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _, cfg = launcher.compose_config([PAPER])
    assert cfg.CHECKPOINT.KEEP_LAST_ITER_CHECKPOINTS == 2
    hooks = pirl_hook_generator(cfg)
    position = next(i for i, hook in enumerate(hooks)
                    if isinstance(hook, LogLossMetricsCheckpointHook))  # pirl_loss: the guarded one
    assert isinstance(hooks[position + 1], CheckpointPruningHook)
    _, cfg = launcher.compose_config([PAPER, "config.CHECKPOINT.KEEP_LAST_ITER_CHECKPOINTS=-1"])
    assert CheckpointPruningHook not in [type(hook) for hook in pirl_hook_generator(cfg)]


@pytest.mark.parametrize("value", ["0", "-2", "two"])
def test_a_bad_number_names_the_fix(value, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _, cfg = launcher.compose_config(
        [PAPER, f"config.CHECKPOINT.KEEP_LAST_ITER_CHECKPOINTS={value}"])
    with pytest.raises(ValueError, match=r"KEEP_LAST_ITER_CHECKPOINTS=.*keep N >= 1 .*or -1"):
        validate_config(cfg)


@pytest.mark.slow
def test_a_training_run_keeps_the_newest_two(tmp_path):
    """2 epochs of 2 steps, a checkpoint every step: iterations 1 and 2 are deleted, the epoch
    checkpoints stay, and VISSL's checkpoints load with weights_only=True."""
    from test_training_e2e import LAUNCHER, paper_config_on_cpu, run

    images = write_image_folder(tmp_path / "images", num_images=4)
    checkpoints = tmp_path / "ckpt"
    run([LAUNCHER, *paper_config_on_cpu(images, checkpoints, "config.OPTIMIZER.num_epochs=2",
                                        "config.CHECKPOINT.CHECKPOINT_ITER_FREQUENCY=1")],
        cwd=tmp_path)
    assert sorted(path.name for path in checkpoints.glob("model_*.torch")) == [
        "model_final_checkpoint_phase1.torch", "model_iteration3.torch",
        "model_iteration4.torch", "model_phase0.torch"]
    for path in checkpoints.glob("*.torch"):
        state = load_checkpoint_safely(path)
        assert state["loss"]["memory_bank.embeddings"].shape == (4, 128)
    assert load_checkpoint_safely(checkpoints / "checkpoint.torch")["iteration"] == 4

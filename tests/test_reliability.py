"""Reliability (issue #5): resume, determinism, bad images, rank consistency, NaN, validation.

Each test's docstring says how it was seen to fail without the feature.
"""
import json
import re
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from vissl_pirl_plugin.hooks.non_finite_guard_hook import NonFiniteGuardHook
from vissl_pirl_plugin.losses.pirl_loss import PIRLLoss
from vissl_pirl_plugin.data.robust_disk_dataset import load_rgb_image

from conftest import write_image_folder
from test_training_e2e import (
    INSTRUMENTED,
    LAUNCHER,
    ON_DEVICE,
    TIMEOUT,
    paper_config_on_cpu,
    rewind_to_epoch_0,
    run,
)


def write_bad_images(folder: Path) -> dict:
    """One file of each kind the issue lists; returns name -> readable?"""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    photo = Image.fromarray(rng.integers(0, 255, (120, 160, 3), dtype=np.uint8))
    photo.save(folder / "good.jpg")
    data = (folder / "good.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(data[: len(data) // 3])
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "not_an_image.jpg").write_text("this is text, not a JPEG")
    photo.resize((20, 20)).save(folder / "tiny.png")
    photo.convert("L").save(folder / "gray.png")
    photo.convert("RGBA").save(folder / "rgba.png")
    Image.fromarray((np.linspace(0, 65535, 80 * 60).reshape(60, 80)).astype(np.uint16)).save(
        folder / "sixteen_bit.png")
    photo.convert("CMYK").save(folder / "cmyk.jpg")
    return {"good.jpg": True, "truncated.jpg": False, "empty.jpg": False,
            "not_an_image.jpg": False, "tiny.png": True, "gray.png": True, "rgba.png": True,
            "sixteen_bit.png": True, "cmyk.jpg": True}


def test_each_kind_of_file_is_decoded_or_refused(tmp_path):
    """Without RobustDiskImageDataset's loader, 16-bit PNGs came out all white (PIL clips)."""
    kinds = write_bad_images(tmp_path)
    for name, readable in kinds.items():
        if readable:
            image = load_rgb_image(str(tmp_path / name))
            assert image.mode == "RGB"
            if name == "sixteen_bit.png":
                assert 60 < np.asarray(image).mean() < 200
        else:
            with pytest.raises((OSError, ValueError, SyntaxError)):
                load_rgb_image(str(tmp_path / name))


def test_non_finite_output_or_loss_stops_at_the_next_check():
    """The output's check is agreed on at its step without waiting, and read at the next
    step's (no host sync); the loss, already on the host, stops its own step."""
    task = SimpleNamespace(iteration=17, phase_idx=2, train=True, losses=[float("inf")],
                           base_loss=PIRLLoss(num_train_samples=10, num_negatives=3),
                           last_batch=SimpleNamespace(model_output=[torch.ones(2), torch.tensor(
                               [1.0, float("nan")])]))
    guard = NonFiniteGuardHook()
    losses, task.losses = task.losses, [1.0]  # a finite loss: the output's check alone
    guard.on_forward(task)
    guard.on_loss_and_meter(task)
    task.iteration = 18
    guard.on_forward(task)
    with pytest.raises(FloatingPointError, match=r"Non-finite model output \(1 values\) at "
                                                 "training step 17 on rank 0"):
        guard.on_loss_and_meter(task)
    task.base_loss.memory_bank.failures.take()  # step 18's output, recorded before the raise
    task.iteration, task.losses = 17, losses
    with pytest.raises(FloatingPointError, match=r"Non-finite loss \(inf, averaged over ranks\) "
                                                 "at training step 17"):
        NonFiniteGuardHook().on_loss_and_meter(task)


def losses(stdout_json: Path) -> list:
    return [json.loads(line)["loss"] for line in stdout_json.read_text().splitlines()]


@pytest.mark.slow
@pytest.mark.parametrize("augmentation", [[], [ON_DEVICE]], ids=["loader", "on_device"])
def test_bad_images_train_to_the_end_and_stay_out_of_the_bank(tmp_path, augmentation):
    """VISSL 0.1.6's disk_folder crashed on the truncated JPEG (OSError 'Truncated File
    Read', raised again inside its own error handler)."""
    kinds = write_bad_images(tmp_path / "images" / "mixed")
    overrides = paper_config_on_cpu(tmp_path / "images", tmp_path / "ckpt", *augmentation,
                                    "config.OPTIMIZER.num_epochs=2",
                                    "config.DATA.TRAIN.BATCHSIZE_PER_REPLICA=3")
    result = run([INSTRUMENTED, str(tmp_path), *overrides], cwd=tmp_path)
    log = result.stdout + result.stderr
    names = sorted(kinds)  # ImageFolder's order = dataset index
    for index, name in enumerate(names):
        lines = [line for line in log.splitlines() if f"(dataset index {index})" in line]
        assert len(lines) == (0 if kinds[name] else 1), name  # each bad file named once
    assert log.count("unreadable samples in this epoch") == 2
    start, end = (torch.load(tmp_path / f"state_{w}_rank0.pt")["bank"] for w in ("start", "end"))
    for index, name in enumerate(names):
        moved = not torch.equal(start[index], end[index])
        assert moved == kinds[name], name  # placeholders never updated the bank


@pytest.mark.slow
def test_two_runs_with_the_same_seed_give_identical_losses(tmp_path):
    """Passes on VISSL's own seeding alone; kept as a guard for the plugin's randomness."""
    images = write_image_folder(tmp_path / "images", num_images=6)
    for run_name in ("a", "b"):
        run([LAUNCHER, *paper_config_on_cpu(images, tmp_path / run_name,
                                            "config.OPTIMIZER.num_epochs=2")], cwd=tmp_path)
    assert losses(tmp_path / "a" / "stdout.json") == losses(tmp_path / "b" / "stdout.json")


@pytest.mark.slow
@pytest.mark.parametrize("workers, augmentation", [(0, ()), (2, ()), (2, (ON_DEVICE,))],
                         ids=["0-workers", "2-workers", "2-workers-on_device"])
def test_resume_at_an_epoch_boundary_retraces_the_uninterrupted_run(tmp_path, workers,
                                                                    augmentation):
    """Without PhaseSeedHook the resumed epoch drew other augmentations and negatives and the
    final banks differed; with 2 data-loader workers the hook reseeded too late (the workers'
    seeds are drawn when the epoch's loader starts, before on_phase_start) and the resumed
    epoch's losses, bank and weights differed until the hook seeded the loader's generator.
    On the device the augmentation's generator is seeded per step (seed, rank, iteration)."""
    images = write_image_folder(tmp_path / "images", num_images=6)
    extra = ("config.OPTIMIZER.num_epochs=2", f"config.DATA.NUM_DATALOADER_WORKERS={workers}",
             *augmentation)
    whole = paper_config_on_cpu(images, tmp_path / "whole", *extra)
    run([INSTRUMENTED, str(tmp_path / "whole"), *whole], cwd=tmp_path)
    split_dir = tmp_path / "split"
    split = paper_config_on_cpu(images, split_dir, *extra,
                                "config.CHECKPOINT.CHECKPOINT_FREQUENCY=1")
    run([INSTRUMENTED, str(split_dir), *split], cwd=tmp_path)
    rewind_to_epoch_0(split_dir)
    run([INSTRUMENTED, str(split_dir), *split], cwd=tmp_path)  # resumes from epoch 0's end
    whole_losses = losses(tmp_path / "whole" / "stdout.json")
    assert losses(split_dir / "stdout.json")[-len(whole_losses) // 2:] == \
        whole_losses[len(whole_losses) // 2:]  # the second epoch's steps
    uninterrupted = torch.load(tmp_path / "whole" / "state_end_rank0.pt")
    resumed = torch.load(split_dir / "state_end_rank0.pt")
    assert torch.equal(uninterrupted["bank"], resumed["bank"])
    trunk = "trunk"
    for key, value in uninterrupted["model"][trunk].items():
        assert torch.equal(value, resumed["model"][trunk][key]), key


def kill_after_iteration_checkpoint(tmp_path: Path, overrides: list, checkpoints: Path,
                                    iteration: int) -> None:
    """Runs the instrumented launcher (dumps in ``tmp_path / "first"``), a second per step, and
    kills it with SIGKILL once the checkpoint of ``iteration`` is written."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PIRL_TEST_STEP_SLEEP="1.0")
    (tmp_path / "first").mkdir()
    first = subprocess.Popen([sys.executable, INSTRUMENTED, str(tmp_path / "first"), *overrides],
                             cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + TIMEOUT
    # VISSL links checkpoint.torch to a checkpoint once torch.save has written it whole
    link = checkpoints / "checkpoint.torch"
    while not (link.is_symlink()
               and os.readlink(link).endswith(f"model_iteration{iteration}.torch")):
        assert first.poll() is None and time.time() < deadline, "no iteration checkpoint"
        time.sleep(0.1)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()


@pytest.mark.slow
def test_killed_mid_epoch_resumes_from_the_iteration_checkpoint(tmp_path):
    """A real process is killed with SIGKILL after an iteration checkpoint; the same command
    resumes with that checkpoint's bank, Z, weights and sampler position."""
    images = write_image_folder(tmp_path / "images", num_images=8)
    checkpoints = tmp_path / "ckpt"
    overrides = paper_config_on_cpu(images, checkpoints, "config.OPTIMIZER.num_epochs=2",
                                    "config.CHECKPOINT.CHECKPOINT_ITER_FREQUENCY=3")
    kill_after_iteration_checkpoint(tmp_path, overrides, checkpoints, 3)
    saved = torch.load(checkpoints / "model_iteration3.torch", map_location="cpu",
                       weights_only=False)
    assert not (checkpoints / "model_iteration6.torch").exists()  # killed mid-epoch 1

    dumps = tmp_path / "second"
    dumps.mkdir()
    result = run([INSTRUMENTED, str(dumps), *overrides], cwd=tmp_path)
    resumed = torch.load(dumps / "state_start_rank0.pt")
    assert resumed["iteration"] == 3 == saved["iteration"]
    assert torch.equal(resumed["bank"], saved["loss"]["memory_bank.embeddings"])
    assert torch.equal(resumed["log_z"], saved["loss"]["log_norm_constant"])
    weights = saved["classy_state_dict"]["base_model"]["model"]
    for part in ("trunk", "heads"):
        for key, value in weights[part].items():
            assert torch.equal(resumed["model"][part][key], value), key
    log = result.stdout + result.stderr
    # 8 images / batch 2 = 4 steps per epoch: the resumed run does steps 3..7, not 0..7
    assert "iter: 3;" in log and "iter: 7;" in log and "iter: 0;" not in log
    assert (checkpoints / "model_final_checkpoint_phase1.torch").exists()


@pytest.mark.slow
def test_rank_drift_is_detected_and_stops_the_run(tmp_path):
    """With consistency_check_period=0 the corrupted bank trained on silently."""
    images = write_image_folder(tmp_path / "images", num_images=8)
    overrides = paper_config_on_cpu(
        images, tmp_path / "ckpt", "config.DISTRIBUTED.NUM_PROC_PER_NODE=2",
        "config.LOSS.pirl_loss.memory_bank.consistency_check_period=1")
    env = dict(os.environ, OMP_NUM_THREADS="1", PIRL_TEST_CORRUPT_RANK="1",
               PIRL_TEST_FAULT_STEP="2")
    result = subprocess.run([sys.executable, INSTRUMENTED, str(tmp_path), *overrides],
                            cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=TIMEOUT)
    assert result.returncode != 0
    assert re.search(r"Memory bank differs across ranks at step \d+: ranks \[1\] disagree",
                     result.stderr)


@pytest.mark.slow
def test_nan_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path):
    """Without NonFiniteGuardHook the run died inside VISSL's own NaN handling
    (CheckNanModelOutputHook: AttributeError '_checkpoint_model'), naming no step, after
    VISSL's checkpoint hook had tried to checkpoint the NaN model."""
    images = write_image_folder(tmp_path / "images", num_images=8)
    checkpoints = tmp_path / "ckpt"
    overrides = paper_config_on_cpu(images, checkpoints, "config.OPTIMIZER.num_epochs=3",
                                    "config.CHECKPOINT.CHECKPOINT_FREQUENCY=1")
    env = dict(os.environ, OMP_NUM_THREADS="1", PIRL_TEST_NAN_STEP="5")
    result = subprocess.run([sys.executable, INSTRUMENTED, str(tmp_path), *overrides],
                            cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=TIMEOUT)
    assert result.returncode != 0
    assert re.search(r"Non-finite model output \(\d+ values\) at training step 5 on rank 0",
                     result.stderr)
    assert sorted(p.name for p in checkpoints.glob("*.torch")) == [
        "checkpoint.torch", "model_phase0.torch"]
    good = torch.load(checkpoints / "checkpoint.torch", map_location="cpu", weights_only=False)
    weights = good["classy_state_dict"]["base_model"]["model"]["trunk"]
    assert all(torch.isfinite(value).all() for value in weights.values())


@pytest.mark.slow
def test_killed_mid_epoch_with_on_device_draws_what_the_uninterrupted_run_drew(tmp_path):
    """``augmentation=on_device``: a run killed with SIGKILL after an iteration checkpoint in the
    middle of the epoch resumes there and trains the rest of the epoch exactly as the
    uninterrupted run did (losses, bank, weights), 2 loader workers (they only decode).
    Without the per-step seeding of the global generators the resumed steps drew other
    negatives (the global generator restarted from the epoch's seed) and the losses differed
    from the first resumed step on; without ``EpochScheduleHook`` VISSL gave the rest of the
    epoch the cosine's learning rate at the resume point (0.00012 instead of 0.00023 here) and
    they differed from the second."""
    images = write_image_folder(tmp_path / "images", num_images=8)
    extra = ("config.DATA.NUM_DATALOADER_WORKERS=2", ON_DEVICE,
             "config.CHECKPOINT.CHECKPOINT_ITER_FREQUENCY=2")
    whole = tmp_path / "whole"
    run([INSTRUMENTED, str(whole), *paper_config_on_cpu(images, whole, *extra)], cwd=tmp_path)
    checkpoints = tmp_path / "split"
    overrides = paper_config_on_cpu(images, checkpoints, *extra)
    kill_after_iteration_checkpoint(tmp_path, overrides, checkpoints, 2)
    assert not (checkpoints / "model_final_checkpoint_phase0.torch").exists()  # mid-epoch 0
    (tmp_path / "second").mkdir()
    run([INSTRUMENTED, str(tmp_path / "second"), *overrides], cwd=tmp_path)
    assert torch.load(tmp_path / "second" / "state_start_rank0.pt")["iteration"] == 2
    # 8 images / batch 2: steps 0..3; the resumed run logged steps 2 and 3 after the first's 0, 1
    resumed_losses = losses(checkpoints / "stdout.json")[-2:]
    assert resumed_losses == losses(whole / "stdout.json")[2:]
    uninterrupted = torch.load(whole / "state_end_rank0.pt")
    resumed = torch.load(tmp_path / "second" / "state_end_rank0.pt")
    assert torch.equal(uninterrupted["bank"], resumed["bank"])
    for part in ("trunk", "heads"):
        for key, value in uninterrupted["model"][part].items():
            assert torch.equal(value, resumed["model"][part][key]), key

"""End-to-end runs of VISSL's trainer with the plugin on the CPU (slow; run in CI).

They train the paper's config for a few iterations on a tiny folder of images,
with the command-line overrides documented in docs/training.md.
"""
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import List

import pytest
import torch

from vissl_pirl_plugin.losses.memory_bank import MemoryBank

from conftest import REPO, write_image_folder

pytestmark = pytest.mark.slow

LAUNCHER = str(REPO / "tools" / "run_distributed_engines.py")
INSTRUMENTED = str(REPO / "tests" / "instrumented_launch.py")
TIMEOUT = 600


def readme_cpu_overrides(images: Path, checkpoints: Path) -> List[str]:
    """The paper config with exactly the overrides of docs/training.md for one CPU process on a folder."""
    return [
        "config=pretrain/pirl/pirl_jigsaw_4node_resnet50",
        "config.MACHINE.DEVICE=cpu",
        "config.DISTRIBUTED.BACKEND=gloo",
        "config.DISTRIBUTED.NUM_NODES=1",
        "config.DISTRIBUTED.NUM_PROC_PER_NODE=1",
        f"config.DATA.TRAIN.DATA_PATHS=[{images}]",
        "config.DATA.TRAIN.BATCHSIZE_PER_REPLICA=2",
        "config.LOSS.pirl_loss.num_negatives=2",
        "config.OPTIMIZER.num_epochs=1",
        "config.DATA.NUM_DATALOADER_WORKERS=0",
        f"config.CHECKPOINT.DIR={checkpoints}",
    ]


def paper_config_on_cpu(images: Path, checkpoints: Path, *extra: str) -> List[str]:
    """docs/training.md's overrides, plus smaller untransformed crops (patches stay 64 x 64) and a log
    line per step, to keep the other end-to-end tests quick and observable."""
    return [*readme_cpu_overrides(images, checkpoints),
            "config.DATA.TRAIN.TRANSFORMS.0.image_crop_size=64", "config.LOG_FREQUENCY=1", *extra]


def run(args: List[str], cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    result = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True,
                            text=True, timeout=TIMEOUT)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return result


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def checkpoint_loss_state(folder: Path, phase: int = 0) -> dict:
    checkpoint = torch.load(folder / f"model_final_checkpoint_phase{phase}.torch",
                            map_location="cpu", weights_only=False)
    return checkpoint["loss"]


def rewind_to_epoch_0(checkpoints: Path) -> None:
    """Leaves the folder as a run stopped right after epoch 0's checkpoint would have."""
    (checkpoints / "model_final_checkpoint_phase1.torch").unlink()
    (checkpoints / "checkpoint.torch").unlink()
    (checkpoints / "checkpoint.torch").symlink_to(checkpoints / "model_phase0.torch")


def test_paper_config_trains_two_iterations_on_cpu(tmp_path):
    """The README's command on a flat folder of JPEGs (the other tests use class sub-folders)."""
    images = write_image_folder(tmp_path / "images", num_images=4, flat=True)
    run([LAUNCHER, *readme_cpu_overrides(images, tmp_path / "ckpt")], cwd=tmp_path)
    checkpoint = torch.load(tmp_path / "ckpt" / "model_final_checkpoint_phase0.torch",
                            map_location="cpu", weights_only=False)
    assert checkpoint["iteration"] == 2  # 4 images / batch 2 = 2 iterations
    state = checkpoint["loss"]
    bank = state["memory_bank.embeddings"]
    assert bank.shape == (4, 128)  # sized from the dataset, not typed by the user
    initial = MemoryBank(4, 128).embeddings
    assert not torch.isclose(bank, initial).all(dim=1).any()  # every image updated its entry
    assert torch.allclose(bank.norm(dim=1), torch.ones(4), atol=1e-5)
    assert torch.isfinite(state["log_norm_constant"])  # Z was estimated and checkpointed


ON_DEVICE = "+config/pretrain/pirl/augmentation=on_device"


@pytest.mark.parametrize("dtype, augmentation", [("float32", []), ("float16", []),
                                                 ("float32", [ON_DEVICE])],
                         ids=["float32", "float16", "float32-on_device"])
def test_two_processes_hold_identical_banks(tmp_path, dtype, augmentation):
    images = write_image_folder(tmp_path / "images", num_images=8)
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    overrides = paper_config_on_cpu(images, tmp_path / "ckpt", *augmentation,
                                    "config.DISTRIBUTED.NUM_PROC_PER_NODE=2",
                                    "config.OPTIMIZER.num_epochs=2",
                                    f"config.LOSS.pirl_loss.memory_bank.dtype={dtype}",
                                    "config.LOSS.pirl_loss.memory_bank.consistency_check_period=1")
    run([INSTRUMENTED, str(dumps), *overrides], cwd=tmp_path)
    rank0 = torch.load(dumps / "state_end_rank0.pt")
    rank1 = torch.load(dumps / "state_end_rank1.pt")
    assert rank0["bank"].dtype == getattr(torch, dtype)
    assert torch.equal(rank0["bank"], rank1["bank"])
    assert torch.equal(rank0["log_z"], rank1["log_z"])
    # both ranks' samples reached both banks: all 8 entries moved away from the init
    initial = torch.load(dumps / "state_start_rank0.pt")["bank"]
    assert not torch.isclose(rank0["bank"], initial).all(dim=1).any()


def test_two_processes_train_the_jigsaw_model_with_lambda_zero(tmp_path):
    """lambda = 0 on the two-input model (docs/benchmarks.md's baseline for the invariance analysis): the
    jigsaw head has no loss term, and DistributedDataParallel stops at the second step unless
    that head still receives a (zero) gradient."""
    images = write_image_folder(tmp_path / "images", num_images=8)
    run([LAUNCHER, *paper_config_on_cpu(images, tmp_path / "ckpt",
                                        "config.DISTRIBUTED.NUM_PROC_PER_NODE=2",
                                        "config.LOSS.pirl_loss.lambda_weight=0")], cwd=tmp_path)
    assert (tmp_path / "ckpt" / "model_final_checkpoint_phase0.torch").is_file()


def test_two_nodes_on_loopback_train_together(tmp_path):
    images = write_image_folder(tmp_path / "images", num_images=8)
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    overrides = paper_config_on_cpu(
        images, tmp_path / "ckpt", "config.DISTRIBUTED.NUM_NODES=2",
        "config.DISTRIBUTED.INIT_METHOD=tcp", f"config.DISTRIBUTED.RUN_ID=127.0.0.1:{free_port()}")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    nodes = [subprocess.Popen([sys.executable, INSTRUMENTED, str(dumps), f"node_id={node}",
                               *overrides], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for node in (0, 1)]
    outputs = [node.communicate(timeout=TIMEOUT)[0] for node in nodes]
    for node, output in zip(nodes, outputs):
        assert node.returncode == 0, output[-4000:]
    node0 = torch.load(dumps / "state_end_rank0.pt")["bank"]
    node1 = torch.load(dumps / "state_end_rank1.pt")["bank"]
    assert torch.equal(node0, node1)
    initial = torch.load(dumps / "state_start_rank0.pt")["bank"]
    assert not torch.isclose(node0, initial).all(dim=1).any()


def test_resume_restores_the_bank_from_the_checkpoint(tmp_path):
    images = write_image_folder(tmp_path / "images", num_images=4)
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    checkpoints = tmp_path / "ckpt"
    overrides = paper_config_on_cpu(images, checkpoints, "config.OPTIMIZER.num_epochs=2",
                                    "config.CHECKPOINT.CHECKPOINT_FREQUENCY=1")
    run([LAUNCHER, *overrides], cwd=tmp_path)
    saved = torch.load(checkpoints / "model_phase0.torch", map_location="cpu",
                       weights_only=False)["loss"]
    # as if the run had stopped after epoch 0: the same command resumes from that checkpoint
    rewind_to_epoch_0(checkpoints)
    run([INSTRUMENTED, str(dumps), *overrides], cwd=tmp_path)
    resumed = torch.load(dumps / "state_start_rank0.pt")
    assert torch.equal(resumed["bank"], saved["memory_bank.embeddings"])
    assert torch.equal(resumed["log_z"], saved["log_norm_constant"])
    assert not torch.equal(torch.load(dumps / "state_end_rank0.pt")["bank"], resumed["bank"])


@pytest.mark.parametrize("config, extra", [
    ("pirl_rotation_4node_resnet50", ["+config.DATA.TRAIN.TRANSFORMS.0.pretext.crop_size=64"]),
    ("pirl_jigsaw_rotation_4node_resnet50", []),
    ("npid_plusplus_4node_resnet50", []),
    ("pirl_jigsaw_4node_resnet50", ["+config/pretrain/pirl/analysis=section4",
                                    "+config/pretrain/pirl/head=mlp",
                                    "+config/pretrain/pirl/augmentation=gaussian_blur",
                                    "config.LOSS.pirl_loss.num_negatives=2",
                                    "config.DATA.TRAIN.TRANSFORMS.0.image_crop_size=64",
                                    "config.DATA.TRAIN.TRANSFORMS.0.num_permutations=10"]),
    ("pirl_jigsaw_4node_resnet50", [ON_DEVICE, "config.DATA.NUM_DATALOADER_WORKERS=2"]),
    ("pirl_rotation_4node_resnet50", [ON_DEVICE,
                                      "+config.DATA.TRAIN.TRANSFORMS.0.pretext.crop_size=64"]),
    ("npid_plusplus_4node_resnet50", [ON_DEVICE]),
])
def test_every_pretext_config_trains_two_iterations(tmp_path, config, extra):
    images = write_image_folder(tmp_path / "images", num_images=4)
    overrides = paper_config_on_cpu(images, tmp_path / "ckpt", *extra)
    overrides[0] = f"config=pretrain/pirl/{config}"
    result = run([LAUNCHER, *overrides], cwd=tmp_path)
    log = result.stdout + result.stderr
    assert "iter: 1;" in log and "iter: 2;" not in log
    bank = checkpoint_loss_state(tmp_path / "ckpt")["memory_bank.embeddings"]
    assert not torch.isclose(bank, MemoryBank(4, 128).embeddings).all(dim=1).any()

"""KnnMonitorHook on a stand-in task with the demo's real model (single process)."""
import json
import random
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torchvision.datasets import ImageFolder
from vissl.models import build_model

from vissl_pirl_plugin.engine.launcher import compose_config
from vissl_pirl_plugin.hooks.hook_generator import pirl_hook_generator
from vissl_pirl_plugin.hooks.knn_monitor_hook import KnnMonitorHook, image_branch
from vissl_pirl_plugin.losses.pirl_loss import PIRLLoss

from conftest import write_image_folder


def folder_dataset(root: Path) -> SimpleNamespace:
    """The parts of VISSL's GenericSSLDataset over one disk_folder that the hook reads."""
    folder = ImageFolder(str(root))
    source = SimpleNamespace(data_source="disk_folder", image_dataset=folder,
                             get_image_paths=lambda: [path for path, _ in folder.samples])
    return SimpleNamespace(data_objs=[source], data_limit=-1)


def demo_config(tmp_path: Path, *overrides: str):
    return compose_config(["config=pretrain/pirl/pirl_jigsaw_cpu_demo",
                           f"config.CHECKPOINT.DIR={tmp_path / 'ckpt'}", *overrides])[1]


def make_task(tmp_path: Path, train: Path, config) -> SimpleNamespace:
    torch.manual_seed(0)
    model = build_model(config.MODEL, config.OPTIMIZER)
    loss = PIRLLoss(num_train_samples=len(ImageFolder(str(train))), num_negatives=2,
                    embedding_dim=128)
    return SimpleNamespace(base_model=model, base_loss=loss, datasets={"train": folder_dataset(train)},
                           config=config, train=True, train_phase_idx=0, num_train_phases=1,
                           iteration=5, phase_idx=0, metrics={}, hooks=[],
                           checkpoint_folder=str(tmp_path))


def test_monitor_is_on_only_with_a_validation_folder(tmp_path):
    assert not any(isinstance(h, KnnMonitorHook) for h in pirl_hook_generator(demo_config(tmp_path)))
    config = demo_config(tmp_path, "config.HOOKS.KNN_MONITOR.VAL_DATA_PATH=/some/folder",
                         "config.HOOKS.KNN_MONITOR.K=3")
    monitors = [h for h in pirl_hook_generator(config) if isinstance(h, KnnMonitorHook)]
    # the demo config evaluates every 10 epochs; the temperature is the paper config's
    assert [(m.val_data_path, m.k, m.temperature, m.period_epochs) for m in monitors] == [
        ("/some/folder", 3, 0.07, 10)]


def test_training_set_without_class_folders_is_refused(tmp_path):
    train = write_image_folder(tmp_path / "train", num_images=4)
    for image in (train / "class1").iterdir():  # every image in one folder: no classes
        image.rename(train / "class0" / image.name)
    (train / "class1").rmdir()
    task = make_task(tmp_path, train, demo_config(tmp_path))
    with pytest.raises(ValueError, match="no class sub-folders .* one sub-folder per class"):
        KnnMonitorHook(str(train)).on_start(task)


def test_validation_classes_must_be_training_classes(tmp_path):
    train = write_image_folder(tmp_path / "train", num_images=4)
    val = write_image_folder(tmp_path / "val", num_images=2)
    (val / "class1").rename(val / "zebra")
    task = make_task(tmp_path, train, demo_config(tmp_path))
    with pytest.raises(ValueError, match=r"\['zebra'\] are not"):
        KnnMonitorHook(str(val)).on_start(task)


def test_training_images_find_themselves_and_training_state_is_untouched(tmp_path, monkeypatch):
    """With the bank holding f of the training images under the evaluation view, each of them
    is its own nearest neighbour: top-1 is 1. The bank, the train mode and the random streams
    stay as they were, also when the evaluation's forward draws random numbers."""
    train = write_image_folder(tmp_path / "train", num_images=6, size=72)
    task = make_task(tmp_path, train, demo_config(tmp_path))
    hook = KnnMonitorHook(str(train), k=1)
    hook.on_start(task)
    task.base_model.eval()
    with torch.no_grad():
        images = [hook.transform(image) for image in hook.load(hook.val_samples)[0]]
        task.base_loss.memory_bank.embeddings.copy_(image_branch(task.base_model,
                                                                 torch.stack(images)))
    task.base_model.train()
    trunk_forward = task.base_model.trunk.forward

    def drawing_forward(*args, **kwargs):
        torch.rand(1), np.random.rand(), random.random()
        return trunk_forward(*args, **kwargs)
    monkeypatch.setattr(task.base_model.trunk, "forward", drawing_forward)
    bank = task.base_loss.memory_bank.embeddings.clone()
    torch.manual_seed(1), np.random.seed(1), random.seed(1)
    expected_draws = (torch.rand(1), np.random.rand(), random.random())
    torch.manual_seed(1), np.random.seed(1), random.seed(1)
    hook.on_phase_end(task)
    assert (torch.rand(1), np.random.rand(), random.random()) == expected_draws
    assert task.base_model.training and torch.equal(task.base_loss.memory_bank.embeddings, bank)
    assert task.metrics == {"knn_top1": [1.0], "knn_top5": [1.0]}
    record = json.loads((tmp_path / "metrics.json").read_text().splitlines()[-1])
    assert record["knn_top1"] == 1.0 and record["epoch"] == 1 and record["knn_images"] == 6


@pytest.mark.slow
def test_two_ranks_with_a_sharded_bank_train_the_same_with_the_monitor_on(tmp_path):
    """The monitor (on both ranks, sharded bank, TensorBoard on) leaves the losses exactly as a run
    without it; it writes two evaluations to metrics.json and TensorBoard."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from test_training_e2e import LAUNCHER, paper_config_on_cpu, run

    images = write_image_folder(tmp_path / "images", num_images=8)
    losses = {}
    for monitor in (False, True):
        checkpoints = tmp_path / f"monitor_{monitor}"
        knn = [f"config.HOOKS.KNN_MONITOR.VAL_DATA_PATH={images}", "config.HOOKS.KNN_MONITOR.K=3",
               "config.HOOKS.TENSORBOARD_SETUP.USE_TENSORBOARD=true"] if monitor else []
        run([LAUNCHER, *paper_config_on_cpu(
            images, checkpoints, "config.DISTRIBUTED.NUM_PROC_PER_NODE=2",
            "config.OPTIMIZER.num_epochs=2", "config.LOSS.pirl_loss.memory_bank.sharded=true",
            *knn)], cwd=tmp_path)
        losses[monitor] = [json.loads(line)["loss"]
                           for line in (checkpoints / "stdout.json").read_text().splitlines()]
    assert len(losses[False]) == 4 and losses[True] == losses[False]
    records = [json.loads(line) for line in (checkpoints / "metrics.json").read_text().splitlines()]
    knn = [record for record in records if "knn_top1" in record]
    assert [(r["epoch"], r["knn_images"]) for r in knn] == [(1, 8), (2, 8)]
    assert all(0.0 <= r["knn_top1"] <= r["knn_top5"] == 1.0 for r in knn)  # 2 classes
    events = EventAccumulator(str(checkpoints / "tb_logs")).Reload()
    assert [event.step for event in events.Scalars("kNN/top1")] == [1, 2]

"""The train step of ``augmentation=on_device``: the epoch's batches augmented on the task's
device, seeded per (seed, rank, iteration)."""
from types import SimpleNamespace

import pytest
import torch
from PIL import Image

from vissl_pirl_plugin.data.pirl_collator import pirl_collator
from vissl_pirl_plugin.data.transforms.pirl_jigsaw_transform import ImgPilToPirlJigsaw
from vissl_pirl_plugin.engine.device_augmentation_train_step import (
    DeviceAugmentedBatches,
    step_seed,
)

TRANSFORM = {"name": "ImgPilToPirlJigsaw", "image_crop_size": 32, "on_device": True}


def fake_task(transforms, batches, iteration=0):
    config = {"SEED_VALUE": 0, "DATA": {"TRAIN": {"TRANSFORMS": transforms,
                                                  "COLLATE_FUNCTION_PARAMS": {}}}}
    return SimpleNamespace(config=config, device=torch.device("cpu"), iteration=iteration,
                           data_iterator=batches, train=True)


def canvases(count: int = 2):
    transform = ImgPilToPirlJigsaw(on_device=True)
    samples = [{"data": [transform(Image.new("RGB", (40 + i, 30), (i * 40, 90, 200)))],
                "label": [i], "data_valid": [1], "data_idx": [i]} for i in range(3)]
    return [pirl_collator(samples) for _ in range(count)]


def test_batches_come_out_as_pirl_collators_with_the_epochs_length():
    batches = canvases()
    wrapped = DeviceAugmentedBatches(fake_task([TRANSFORM], batches), iter(batches))
    assert len(DeviceAugmentedBatches(fake_task([TRANSFORM], batches), batches)) == 2
    batch = next(wrapped)
    assert set(batch) == {"images", "patches", "label", "data_valid", "data_idx"}
    assert batch["images"][0].shape == (3, 3, 32, 32)
    assert batch["patches"][0].shape == (27, 3, 64, 64)
    assert batch["label"][0].tolist() == [0, 1, 2]


def test_a_step_draws_the_same_values_whenever_it_runs_and_steps_differ():
    batches = canvases(1)
    task = fake_task([TRANSFORM], batches, iteration=7)
    first = next(DeviceAugmentedBatches(task, iter(batches)))["images"][0]
    again = next(DeviceAugmentedBatches(task, iter(batches)))["images"][0]
    assert torch.equal(first, again)
    task.iteration = 8
    assert not torch.equal(next(DeviceAugmentedBatches(task, iter(batches)))["images"][0], first)
    seeds = {step_seed(seed, rank, it) for seed in (0, 1) for rank in (0, 1) for it in range(50)}
    assert len(seeds) == 200


def test_a_loader_side_transform_is_refused_with_the_fix():
    with pytest.raises(ValueError, match=r"does not hand it the images: use "
                                         r"\+config/pretrain/pirl/augmentation=on_device"):
        DeviceAugmentedBatches(fake_task([dict(TRANSFORM, on_device=False)], []), iter([]))


def test_a_test_phases_loader_side_batches_pass_through_and_a_training_one_is_refused():
    ready = {"images": [torch.zeros(1, 3, 8, 8)], "label": [torch.zeros(1)]}
    task = fake_task([TRANSFORM], [ready])
    task.train = False
    assert next(DeviceAugmentedBatches(task, iter([ready]))) == ready
    task.train = True
    with pytest.raises(ValueError, match="expects batches of uint8 pixels from pirl_collator"):
        next(DeviceAugmentedBatches(task, iter([ready])))

"""Train step ``pirl_device_augmentation_train_step``: the augmentation of PIRL on the training device.

Paper §2 and Appendix A: every step trains on ``I`` and ``I^t`` of each image, made with the
authors' augmentation recipe. With ``+config/pretrain/pirl/augmentation=on_device`` the loader
workers only decode (``ImgPilToPirlPair(on_device=True)``, ``pirl_collator``'s uint8 canvas) and
this step, registered for ``TRAINER.TRAIN_STEP_NAME``, makes ``I`` and ``I^t`` of the whole batch
on the training device (``DevicePirlAugmentation``) before VISSL's ``standard_train_step`` runs
the forward pass, the loss, the backward pass and the hooks on them, unchanged.

It wraps the epoch's data iterator: ``standard_train_step`` reads ``next(task.data_iterator)``,
and gets the batch ``pirl_collator`` would have made in the workers (``images``, the
transformed key, ``label``, ``data_valid``, ``data_idx``). The random values of a step come
from ``(SEED_VALUE, rank, iteration)``: the augmentation's from a generator on the device seeded
from it, and the rest of the step's (the loss's negatives) from torch's global generators,
reseeded from it at the step's start (another stream). The loader workers draw nothing, so a run
resumed from any checkpoint, at an epoch's end or in its middle, draws what the uninterrupted
run drew, and every rank draws its own.
"""
from typing import Any, Dict, Iterator, Optional

import numpy as np
import torch
from classy_vision.dataset.transforms import TRANSFORM_REGISTRY
from classy_vision.generic.distributed_util import get_rank
from vissl.trainer.train_steps import register_train_step
from vissl.trainer.train_task import SelfSupervisionTask
from vissl.trainer.train_steps.standard_train_step import standard_train_step

from vissl_pirl_plugin.data.transforms.batched.pirl_augmentation import DevicePirlAugmentation
from vissl_pirl_plugin.data.transforms.pirl_pair_transform import ImgPilToPirlPair

TRAIN_STEP_NAME = "pirl_device_augmentation_train_step"
STREAM = 0xDE71CE  # keeps these seeds apart from PhaseSeedHook's
GLOBAL_STREAM = 0x610BA1  # the global generators' seeds, apart from the augmentation's


AUTO = "auto"
COMPILE_CHOICES = {AUTO: None, True: True, False: False}


def step_seed(seed: int, rank: int, iteration: int, stream: int = STREAM) -> int:
    """The seed of the augmentation (``stream``: of the global generators) of step
    ``iteration`` on ``rank``."""
    return int(np.random.SeedSequence([seed, rank, iteration, stream]).generate_state(1)[0])


def device_augmentation(config: Dict[str, Any]) -> DevicePirlAugmentation:
    """The batched augmentation of the run's first training transform (``ImgPilToPirlPair`` or
    ``ImgPilToPirlJigsaw`` with ``on_device: true``)."""
    train = config["DATA"]["TRAIN"]
    params = dict(train["TRANSFORMS"][0])
    transform_class = TRANSFORM_REGISTRY.get(params["name"])
    if not (isinstance(transform_class, type) and issubclass(transform_class, ImgPilToPirlPair)
            and params.get("on_device", False)):
        raise ValueError(
            f"TRAINER.TRAIN_STEP_NAME={TRAIN_STEP_NAME} augments on the training device, but "
            f"DATA.TRAIN.TRANSFORMS[0] ({params['name']}) does not hand it the images: use "
            "+config/pretrain/pirl/augmentation=on_device with the plugin's launcher "
            "(tools/run_distributed_engines.py of vissl-pirl, vissl-pirl-train), which turns "
            "on_device on; with VISSL's own launcher also add "
            "+config.DATA.TRAIN.TRANSFORMS.0.on_device=true. Or set "
            "TRAINER.TRAIN_STEP_NAME=standard_train_step.")
    keys = train.get("COLLATE_FUNCTION_PARAMS", {})
    return DevicePirlAugmentation(transform_class.from_config(params),
                                  image_key=keys.get("image_key", "images"),
                                  transformed_key=keys.get("transformed_key", "patches"),
                                  compile=augmentation_compile(train))


def augmentation_compile(train: Dict[str, Any]) -> Optional[bool]:
    """``DATA.TRAIN.DEVICE_AUGMENTATION.COMPILE``: ``auto`` (None: compiled on CUDA devices
    only), ``true`` or ``false``."""
    value = train.get("DEVICE_AUGMENTATION", {}).get("COMPILE", AUTO)
    if value not in COMPILE_CHOICES:
        raise ValueError(f"DATA.TRAIN.DEVICE_AUGMENTATION.COMPILE={value!r}: use auto (compiled on "
                         "CUDA devices), true (on any device) or false (eager).")
    return COMPILE_CHOICES[value]


class DeviceAugmentedBatches:
    """The epoch's batches of uint8 canvases -> ``pirl_collator``'s batches, made on
    ``task.device``. The augmentation and its generator are built once per task (their
    constants reach the device once), not once per epoch."""

    def __init__(self, task: SelfSupervisionTask, batches: Iterator[Dict[str, Any]]) -> None:
        self.task, self.batches = task, batches
        if not hasattr(task, "pirl_device_augmentation"):
            task.pirl_device_augmentation = (device_augmentation(task.config),
                                             torch.Generator(device=task.device))
        self.augmentation, self.generator = task.pirl_device_augmentation
        self.seed, self.rank = int(task.config["SEED_VALUE"]), get_rank()

    def __iter__(self) -> "DeviceAugmentedBatches":
        return self

    def __len__(self) -> int:  # the number of steps of the epoch, as VISSL reads it
        return len(self.batches)

    def __next__(self) -> Dict[str, Any]:
        batch = dict(next(self.batches))
        if "pixels" not in batch:
            if not self.task.train:  # a test phase's transforms run in its loader workers
                return batch
            raise ValueError(
                f"{TRAIN_STEP_NAME} expects batches of uint8 pixels from pirl_collator: set "
                "DATA.TRAIN.COLLATE_FUNCTION=pirl_collator and on_device: true on the first "
                "transform (+config/pretrain/pirl/augmentation=on_device).")
        device = self.task.device
        canvas = batch.pop("pixels")[0].to(device, non_blocking=True)
        sizes = batch.pop("pixel_sizes")[0].to(device, non_blocking=True)
        if device.type == "cuda":  # VISSL's async copy allocated them on its side stream
            canvas.record_stream(torch.cuda.current_stream(device))
            sizes.record_stream(torch.cuda.current_stream(device))
        iteration = self.task.iteration
        self.generator.manual_seed(step_seed(self.seed, self.rank, iteration))
        torch.manual_seed(step_seed(self.seed, self.rank, iteration, GLOBAL_STREAM))
        views = self.augmentation(canvas, sizes, self.generator)
        return {**{key: [view] for key, view in views.items()}, **batch}


@register_train_step(TRAIN_STEP_NAME)
def pirl_device_augmentation_train_step(task: SelfSupervisionTask) -> SelfSupervisionTask:
    """VISSL's ``standard_train_step`` on batches augmented on ``task.device``."""
    if not isinstance(task.data_iterator, DeviceAugmentedBatches):  # a new epoch's iterator
        task.data_iterator = DeviceAugmentedBatches(task, task.data_iterator)
    return standard_train_step(task)

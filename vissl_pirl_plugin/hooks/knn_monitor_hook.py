"""``KnnMonitorHook``: PIRL's progress while it trains, by a kNN vote on the memory bank.

NPID (Wu et al. 2018, §3.4) evaluates with a weighted k-nearest-neighbour classifier
on the memory bank itself: the bank already holds ``m_I`` for every training image
(PIRL §2.2), so a labelled validation set costs one forward pass of the image branch
``f`` and no feature extraction. Every ``PERIOD_EPOCHS`` epochs and after the last one,
the hook embeds the validation images (trunk + head ``f``, eval mode, shorter side
resized to ``crop / 0.875``, centre crop, normalised), finds their ``K`` most similar
bank entries and lets each vote for its training class with weight ``exp(s / tau)``
(``losses/knn_classifier.py``). It reports top-1 and top-5 accuracy as a log line, a
record of ``metrics.json`` in the checkpoint folder (beside VISSL's), ``task.metrics``
and, when VISSL's TensorBoard hook is on, the scalars ``kNN/top1`` and ``kNN/top5``.

Training labels are the class sub-folders of the training set's own image paths (never
``LABEL_SOURCES``, which would replace the sample index that addresses the bank); a
training set without class folders is refused at start. Each rank embeds every
``world_size``-th validation image; the search works with the replicated and the sharded
bank, and every rank computes the same numbers. The evaluation changes no training
state: the bank is only read, the model's train mode and the random generators
(torch, CUDA, numpy, random) are restored.
"""
import contextlib
import logging
import random
import time
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from classy_vision.generic.distributed_util import get_rank, get_world_size, is_primary
from torchvision.datasets import ImageFolder
from torchvision.datasets.folder import IMG_EXTENSIONS
from vissl.config import AttrDict
from vissl.hooks import SSLTensorboardHook
from vissl.utils.io import save_file

from vissl_pirl_plugin.data.image_utils import centre_crop
from vissl_pirl_plugin.data.robust_disk_dataset import DECODE_ERRORS, load_rgb_image
from vissl_pirl_plugin.data.transforms.pirl_pair_transform import IMAGENET_MEAN, IMAGENET_STD
from vissl_pirl_plugin.hooks.noop_hook import NoopHook
from vissl_pirl_plugin.losses.knn_classifier import (
    gather_rows,
    memory_bank_top_k,
    top_k_accuracy,
    weighted_vote,
)
from vissl_pirl_plugin.losses.pirl_loss import PIRLLoss

# the evaluation crop is the training image crop; the shorter side is first resized to
# crop / 0.875, ImageNet's usual 256 -> 224
CROP_FRACTION = 0.875
TOP_KS = (1, 5)


class KnnMonitorHook(NoopHook):
    """See the module docstring. ``batch_size``: validation images embedded at once."""

    def __init__(self, val_data_path: str, period_epochs: int = 1, k: int = 200,
                 temperature: float = 0.07, batch_size: int = 64) -> None:
        super().__init__()
        if period_epochs < 1:
            raise ValueError(f"HOOKS.KNN_MONITOR.PERIOD_EPOCHS={period_epochs} must be >= 1.")
        if k < 1:
            raise ValueError(f"HOOKS.KNN_MONITOR.K={k} must be >= 1 (200 in NPID).")
        if not temperature > 0:
            raise ValueError(f"HOOKS.KNN_MONITOR.TEMPERATURE={temperature} must be > 0 "
                             "(0.07 in NPID).")
        self.val_data_path = str(val_data_path)
        self.period_epochs = period_epochs
        self.k = k
        self.temperature = temperature
        self.batch_size = batch_size
        self.class_names: List[str] = []
        self.train_labels = torch.empty(0, dtype=torch.long)
        self.val_samples: List[Tuple[str, int]] = []

    @classmethod
    def from_config(cls, cfg: AttrDict) -> Optional["KnnMonitorHook"]:
        """The hook of ``cfg.HOOKS.KNN_MONITOR``, or None when no ``VAL_DATA_PATH`` is set."""
        monitor = cfg.HOOKS.get("KNN_MONITOR", {})
        if not monitor.get("VAL_DATA_PATH"):
            return None
        return cls(monitor["VAL_DATA_PATH"], monitor.get("PERIOD_EPOCHS", 1),
                   monitor.get("K", 200), monitor.get("TEMPERATURE", 0.07),
                   cfg.DATA.TRAIN.BATCHSIZE_PER_REPLICA)

    def on_start(self, task) -> None:
        loss = task.base_loss
        if not isinstance(loss, PIRLLoss):
            raise TypeError(f"HOOKS.KNN_MONITOR needs LOSS.name=pirl_loss, got {type(loss)}.")
        names = training_class_names(task.datasets["train"])
        self.class_names = sorted(set(names))
        if len(self.class_names) < 2:
            raise ValueError(
                f"HOOKS.KNN_MONITOR: the training set {list(task.config.DATA.TRAIN.DATA_PATHS)} has "
                f"no class sub-folders (all {len(names)} images are in one folder, "
                f"{self.class_names[0] if names else None!r}), so its memory bank entries carry no "
                "labels to vote with. Put the training images in one sub-folder per class "
                "(ImageFolder layout), or turn the monitor off with "
                "config.HOOKS.KNN_MONITOR.VAL_DATA_PATH=null.")
        if len(names) != loss.memory_bank.num_entries:
            raise ValueError(f"HOOKS.KNN_MONITOR: {len(names)} training images but a memory bank "
                             f"of {loss.memory_bank.num_entries} entries.")
        index = {name: i for i, name in enumerate(self.class_names)}
        self.train_labels = torch.tensor([index[name] for name in names])
        self.val_samples = validation_samples(self.val_data_path, index)
        transform = task.config.DATA.TRAIN.TRANSFORMS[0]
        crop = transform.get("image_crop_size", 224)
        self.transform = centre_crop(crop, round(crop / CROP_FRACTION),
                                     transform.get("mean", IMAGENET_MEAN),
                                     transform.get("std", IMAGENET_STD))
        logging.info(f"kNN monitor: {len(self.val_samples)} validation images of "
                     f"{len(set(t for _, t in self.val_samples))} classes against "
                     f"{len(names)} bank entries of {len(self.class_names)} classes, "
                     f"k={self.k}, temperature={self.temperature}, every "
                     f"{self.period_epochs} epoch(s)")

    def on_phase_end(self, task) -> None:
        if not task.train:
            return
        epochs = task.train_phase_idx + 1
        if epochs % self.period_epochs == 0 or epochs >= task.num_train_phases:
            self.report(task, epochs, self.evaluate(task))

    def evaluate(self, task) -> Dict[str, float]:
        """Top-1 and top-5 accuracy of the kNN vote; the same on every rank (collective)."""
        started = time.perf_counter()
        model = task.base_model
        mine = self.val_samples[get_rank()::get_world_size()]
        with training_state_kept(model), torch.no_grad():
            device = next(model.parameters()).device
            embedded, targets = [], []
            for start in range(0, len(mine), self.batch_size):
                images, labels = self.load(mine[start:start + self.batch_size])
                if images:
                    embedded.append(image_branch(model, torch.stack(images).to(device)))
                    targets.extend(labels)
            dim = task.base_loss.memory_bank.embedding_dim
            queries = torch.cat(embedded) if embedded else torch.zeros(0, dim, device=device)
            similarities, neighbours = memory_bank_top_k(queries, task.base_loss.memory_bank,
                                                         self.k)
            targets = gather_rows(torch.tensor(targets, dtype=torch.long, device=device))
        labels = self.train_labels.to(neighbours.device)[neighbours]
        votes = weighted_vote(similarities, labels, len(self.class_names), self.temperature)
        accuracy = top_k_accuracy(votes, targets, TOP_KS)
        return {**{f"knn_top{k}": value for k, value in accuracy.items()},
                "knn_images": targets.numel(), "knn_seconds": time.perf_counter() - started}

    def load(self, samples: List[Tuple[str, int]]) -> Tuple[List[torch.Tensor], List[int]]:
        """The transformed images of ``samples`` and their labels; unreadable files are skipped."""
        images, labels = [], []
        for path, label in samples:
            try:
                images.append(self.transform(load_rgb_image(path)))
                labels.append(label)
            except DECODE_ERRORS as error:
                logging.warning(f"kNN monitor: skipping unreadable validation image {path}: {error}")
        return images, labels

    def report(self, task, epochs: int, result: Dict[str, float]) -> None:
        for key in (f"knn_top{k}" for k in TOP_KS):
            task.metrics.setdefault(key, []).append(result[key])
        if not is_primary():
            return
        logging.info(f"kNN monitor, epoch {epochs}: top-1 {result['knn_top1']:.4f}, top-5 "
                     f"{result['knn_top5']:.4f} ({result['knn_images']} images, k={self.k}, "
                     f"{result['knn_seconds']:.1f} s)")
        record = {"iteration": task.iteration, "phase_idx": task.phase_idx,
                  "train_phase_idx": task.train_phase_idx, "epoch": epochs, **result}
        save_file(record, f"{task.checkpoint_folder}/metrics.json", append_to_json=True)
        for hook in task.hooks:
            if isinstance(hook, SSLTensorboardHook):
                for k in TOP_KS:
                    hook.tb_writer.add_scalar(f"kNN/top{k}", result[f"knn_top{k}"],
                                              global_step=epochs)


def image_branch(model: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Normalised ``f(v_I)``: the trunk and the head(s) of the model's last input (PIRL's image
    input, whose output the loss and the bank use), or of its only input."""
    mapping = model.model_config.MULTI_INPUT_HEAD_MAPPING
    if len(mapping) > 0:
        key = mapping[-1][0]
        output = model.single_input_forward(images, model._input_to_eval_features_map[key],
                                            model._input_to_head_map[key])
    else:
        output = model.single_input_forward(images, model._output_feature_names, model.heads)
    output = output[-1] if isinstance(output, (list, tuple)) else output
    return F.normalize(output.float(), dim=1)


@contextlib.contextmanager
def training_state_kept(model: torch.nn.Module) -> Iterator[None]:
    """Restores the model's train/eval mode and every random generator's state on exit."""
    was_training = model.training
    states = (torch.get_rng_state(), np.random.get_state(), random.getstate(),
              torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None)
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)
        torch.set_rng_state(states[0])
        np.random.set_state(states[1])
        random.setstate(states[2])
        if states[3] is not None:
            torch.cuda.set_rng_state_all(states[3])


def training_class_names(dataset) -> List[str]:
    """The class (sub-folder) name of every training sample, by dataset index: the ImageFolder
    class of a ``disk_folder``, the parent folder of a ``disk_filelist`` path."""
    source = dataset.data_objs[0]
    if getattr(source, "data_source", None) == "disk_folder":
        source.get_image_paths()  # loads the folder
        folder = source.image_dataset
        names = [folder.classes[target] for _, target in folder.samples]
    else:
        names = [Path(path).parent.name for path in dataset.get_image_paths()[0]]
    if dataset.data_limit >= 0 and dataset._can_random_subset_data_sources():
        if not dataset._subset_initialized:
            dataset._init_image_and_label_subset()
        names = [names[i] for i in dataset.image_and_label_subset]
    return names


def validation_samples(path: str, class_index: Dict[str, int]) -> List[Tuple[str, int]]:
    """``(image path, training class index)`` of an ImageFolder-style validation folder."""
    if not Path(path).is_dir():
        raise ValueError(f"HOOKS.KNN_MONITOR.VAL_DATA_PATH={path!r} is not a folder. Point it at "
                         "a labelled folder with one sub-folder of images per class.")
    classes = sorted(entry.name for entry in Path(path).iterdir() if entry.is_dir())
    unknown = [name for name in classes if name not in class_index]
    if not classes or unknown:
        raise ValueError(
            f"HOOKS.KNN_MONITOR.VAL_DATA_PATH={path!r}: its class sub-folders {classes} must be "
            f"training classes ({sorted(class_index)}); {unknown or 'none found'} are not. Name "
            "the validation sub-folders as the training set's.")
    return ImageFolder.make_dataset(path, {name: class_index[name] for name in classes},
                                    extensions=IMG_EXTENSIONS)

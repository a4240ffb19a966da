"""RobustDiskImageDataset's index-to-path lookup, as UnreadableImageHook uses it in a training
step: right path, no folder scan, no list loaded into the trainer's process (issue 13, defect 9)."""
import logging
import os
import pickle
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
import torchvision.datasets
from vissl.config import AttrDict

from vissl_pirl_plugin.data.robust_disk_dataset import RobustDiskImageDataset
from vissl_pirl_plugin.hooks.unreadable_image_hook import UnreadableImageHook

from conftest import write_image_folder


def make_dataset(source: str, path: Path, remove_prefix: str = "", new_prefix: str = ""):
    cfg = AttrDict({"DATA": {"TRAIN": {
        "BATCHSIZE_PER_REPLICA": 2, "REMOVE_IMG_PATH_PREFIX": remove_prefix,
        "NEW_IMG_PATH_PREFIX": new_prefix, "ENABLE_QUEUE_DATASET": False, "MMAP_MODE": True,
        "DEFAULT_GRAY_IMG_SIZE": 224}}})
    return RobustDiskImageDataset(cfg, source, str(path), "TRAIN", "test")


def forbid_scans(monkeypatch) -> None:
    """Makes any directory scan or ImageFolder construction fail the test."""
    def refuse(*args, **kwargs):
        raise AssertionError("the path lookup scanned the image folder")
    monkeypatch.setattr(os, "scandir", refuse)
    monkeypatch.setattr(torchvision.datasets.ImageFolder, "__init__", refuse)


def test_folder_lookup_names_the_file_without_scanning(tmp_path, monkeypatch):
    images = write_image_folder(tmp_path / "images", num_images=6)
    dataset = make_dataset("disk_folder", images)
    expected = sorted(str(p) for p in images.glob("*/*.jpg"))  # ImageFolder's order
    forbid_scans(monkeypatch)
    assert [dataset.image_path(i) for i in range(6)] == expected


def test_filelist_lookup_reads_one_entry_and_keeps_the_list_out_of_the_process(tmp_path):
    """The lookup used to load the whole list into the trainer's process, where every later
    epoch's data-loader workers were then sent it (VISSL drops it after __init__ for that)."""
    images = write_image_folder(tmp_path / "images", num_images=6)
    paths = sorted(str(p) for p in images.glob("*/*.jpg"))
    filelist = tmp_path / "train_images.npy"
    np.save(filelist, np.array([p.replace(str(tmp_path), "/old/root") for p in paths]))
    dataset = make_dataset("disk_filelist", filelist, "/old/root", str(tmp_path))
    pickled_size = len(pickle.dumps(dataset))
    assert dataset.image_path(4) == paths[4]
    assert not dataset.is_initialized and len(dataset.image_dataset) == 0
    assert len(pickle.dumps(dataset)) == pickled_size
    image, valid = dataset[4]  # a worker loads the list once and reads the file
    assert valid and image.size == (96, 96)


def test_the_hook_names_the_unreadable_file_within_the_step_without_scanning(
        tmp_path, monkeypatch, caplog):
    images = write_image_folder(tmp_path / "images", num_images=6)
    dataset = make_dataset("disk_folder", images)
    expected = sorted(str(p) for p in images.glob("*/*.jpg"))[5]
    forbid_scans(monkeypatch)
    # VISSL's train step hands the collator's extra keys over as lists
    task = SimpleNamespace(datasets={"train": SimpleNamespace(data_objs=[dataset])},
                           last_batch=SimpleNamespace(sample={
                               "data_valid": [torch.tensor([True, False])],
                               "data_idx": [torch.tensor([2, 5])]}))
    with caplog.at_level(logging.WARNING):
        UnreadableImageHook().on_forward(task)
    assert f"(dataset index 5): {expected}" in caplog.text
    assert "(dataset index 2)" not in caplog.text

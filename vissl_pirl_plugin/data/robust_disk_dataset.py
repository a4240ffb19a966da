"""``disk_folder`` / ``disk_filelist`` data sources that survive unreadable images.

A ``disk_folder`` may be flat (``image_folder.FolderImages``): VISSL's wants class sub-folders.
VISSL 0.1.6's ``DiskImageDataset`` crashes on the first unreadable file of a
``disk_folder``: its error handler formats ``self.image_dataset[idx]`` into the
log message, which loads the broken file a second time and raises again. It
also converts 16-bit images with PIL's ``convert("RGB")``, which clips them to
white. ``RobustDiskImageDataset`` reads each file itself, converts any PIL mode
properly (``image_utils.to_rgb_uint8``) and, for a file that cannot be decoded
(truncated JPEG, zero bytes, not an image), returns VISSL's grey placeholder
with ``is_success=False``. ``pirl_collator`` then labels it ``ignore_index`` so it
never reaches the loss or the memory bank, and ``UnreadableImageHook`` reports
it. Importing the plugin installs this class behind both source names.
"""
import logging
from pathlib import Path
from typing import List, Tuple

from iopath.common.file_io import g_pathmgr
from PIL import Image
from vissl.data import DATASET_SOURCE_MAP
from vissl.data.data_helper import get_mean_image
from vissl.data.disk_dataset import DiskImageDataset
from vissl.utils.io import load_file

from vissl_pirl_plugin.data.image_folder import FolderImages
from vissl_pirl_plugin.data.image_utils import to_rgb_uint8

# what PIL raises on undecodable input (UnidentifiedImageError is an OSError)
DECODE_ERRORS = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)


def load_rgb_image(path: str) -> Image.Image:
    """Decodes ``path`` fully into an 8-bit RGB PIL image (raises ``DECODE_ERRORS``)."""
    with g_pathmgr.open(path, "rb") as handle:
        image = Image.open(handle)
        image.load()
    if image.mode == "RGB":
        return image
    return Image.fromarray(to_rgb_uint8(image).permute(1, 2, 0).numpy())


class RobustDiskImageDataset(DiskImageDataset):
    def _load_data(self, path: str) -> None:
        """VISSL's, but a ``disk_folder`` may be flat (``FolderImages``)."""
        if self.data_source != "disk_folder":
            return super()._load_data(path)
        split = self.cfg["DATA"][self.split]
        labelled = any(source == "disk_folder" and data_path == path for source, data_path in
                       zip(split.get("LABEL_SOURCES", []), split.get("DATA_PATHS", [])))
        self.image_dataset = FolderImages(path, labelled=labelled)
        logging.info(f"Loaded {len(self.image_dataset)} samples from folder {path}")
        self.is_initialized = True  # scanning the folder again in every worker is expensive

    def image_path(self, idx: int) -> str:
        """The file behind dataset index ``idx``, found without reading the whole dataset.

        Cheap in every process, so that ``UnreadableImageHook`` can name a file inside a
        training step while the other ranks wait at the next collective: a ``disk_folder``'s
        samples are in memory since ``__init__`` (VISSL scans the folder there, once); a
        ``disk_filelist`` that this process has not loaded (the trainer's: VISSL drops the
        list after ``__init__`` so that the data-loader workers are not sent it) is
        memory-mapped and one entry read, and the list is not kept.
        """
        if self.data_source == "disk_folder":
            return self.image_dataset.samples[idx][0]
        paths = self.image_dataset if self.is_initialized else load_file(self._path, "r")
        return self._replace_img_path_prefix(str(paths[idx]), self._remove_prefix,
                                             self._new_prefix)

    def __getitem__(self, idx: int) -> Tuple[Image.Image, bool]:
        if not self.is_initialized:  # a worker loads a disk_filelist once
            self._load_data(self._path)
            self.is_initialized = True
        try:
            return load_rgb_image(self.image_path(idx)), True
        except DECODE_ERRORS:
            return get_mean_image(self.cfg["DATA"][self.split].DEFAULT_GRAY_IMG_SIZE), False


def read_image_folder(folder: Path) -> Tuple[List[Image.Image], List[int]]:
    """All images of a ``disk_folder`` (images in class sub-folders) and their class indices
    (sub-folders in sorted order), read with ``load_rgb_image``; a missing folder or one
    without class sub-folders is a ``MissingInputError`` naming it."""
    dataset = FolderImages(str(folder), labelled=True, loader=load_rgb_image)
    return [dataset[i][0] for i in range(len(dataset))], list(dataset.targets)


def install() -> None:
    """Puts ``RobustDiskImageDataset`` behind VISSL's ``disk_folder`` and ``disk_filelist``."""
    for source in ("disk_folder", "disk_filelist"):
        DATASET_SOURCE_MAP[source] = RobustDiskImageDataset

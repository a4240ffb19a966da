"""``FolderImages``: the images of a ``disk_folder``, with or without class sub-folders.

VISSL 0.1.6 reads a ``disk_folder`` with torchvision's ``ImageFolder``, which wants one
sub-folder per class and stops on a flat folder of JPEGs ("Couldn't find any class folder"),
the most natural input of self-supervised pre-training. PIRL needs no labels (a sample's label
is its dataset index), so:

* a folder whose images all sit in sub-folders is read exactly as ``ImageFolder`` reads it
  (same samples, same order, so the memory bank of an existing run keeps its indices);
* a folder with images directly inside it is read as one class: every image under it,
  sub-folders included, in sorted order.

A folder without any image is refused with the folder's name and the extensions looked for.
"""
import os
from typing import Dict, List, Tuple

from torchvision.datasets import ImageFolder
from torchvision.datasets.folder import IMG_EXTENSIONS, has_file_allowed_extension

ALL_IMAGES = ""  # the one class of a folder with images at its top: the folder itself


def has_images_at_top(directory: str) -> bool:
    with os.scandir(directory) as entries:
        return any(entry.is_file() and has_file_allowed_extension(entry.name, IMG_EXTENSIONS)
                   for entry in entries)


class FolderImages(ImageFolder):
    """``ImageFolder`` that also reads a flat folder (see the module docstring)."""

    def __init__(self, root: str, **kwargs) -> None:
        try:
            super().__init__(root, **kwargs)
        except FileNotFoundError as error:
            raise no_images(root, error) from None

    def find_classes(self, directory: str) -> Tuple[List[str], Dict[str, int]]:
        return folder_classes(directory)


def folder_classes(directory: str) -> Tuple[List[str], Dict[str, int]]:
    """``ImageFolder.find_classes``, or one class for the whole folder if images sit at its top."""
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"{directory} is not a folder: point DATA_PATHS at a folder of "
                                "images (sub-folders optional).")
    if has_images_at_top(directory):
        return [ALL_IMAGES], {ALL_IMAGES: 0}
    return ImageFolder.find_classes(None, directory)


def folder_image_count(directory: str) -> int:
    """The number of samples ``FolderImages(directory)`` has, without opening any image."""
    try:
        return len(ImageFolder.make_dataset(directory, folder_classes(directory)[1],
                                            extensions=IMG_EXTENSIONS))
    except FileNotFoundError as error:
        raise no_images(directory, error) from None


def no_images(directory: str, error: FileNotFoundError) -> FileNotFoundError:
    if not os.path.isdir(directory):
        return error
    return FileNotFoundError(
        f"{directory} holds no images ({', '.join(IMG_EXTENSIONS)}), neither at its top nor in "
        "sub-folders: point DATA_PATHS at a folder of images.")

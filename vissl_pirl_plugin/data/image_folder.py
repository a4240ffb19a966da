"""``FolderImages``: the images of a ``disk_folder``, with or without class sub-folders.

VISSL 0.1.6 reads a ``disk_folder`` with torchvision's ``ImageFolder``, which wants one
sub-folder per class and stops on a flat folder of JPEGs ("Couldn't find any class folder"),
the most natural input of self-supervised pre-training. PIRL needs no labels (a sample's label
is its dataset index), so:

* a folder with class sub-folders is read exactly as ``ImageFolder`` reads it (same samples,
  same order, so the memory bank of an existing run keeps its indices); a few images lying at
  its top are left out, as ``ImageFolder`` leaves them out, and a warning says how many;
* a folder whose images lie at its top, with no image in any sub-folder (none, or only empty
  or stray ones such as ``.ipynb_checkpoints``), is read as one class: its top images, in
  sorted order. Not where its labels are used (``LABEL_SOURCES`` with ``disk_folder``): one
  class would label every image 0;
* a folder with more images at its top than in its sub-folders is refused: which ones to train
  on is the user's call (a ``thumbs/`` folder beside the photographs, say).

A folder without any image is refused with the folder's name and the extensions looked for.
"""
import logging
import os
from typing import Dict, List, Tuple

from torchvision.datasets import ImageFolder
from torchvision.datasets.folder import IMG_EXTENSIONS, has_file_allowed_extension

from vissl_pirl_plugin.utils.user_errors import MissingInputError

ALL_IMAGES = ""  # the one class of a flat folder: the folder itself


def top_level(directory: str) -> Tuple[int, bool]:
    """The number of images directly in ``directory``, and whether it has sub-folders (one
    listing: a flat ImageNet-size folder holds over a million entries)."""
    images, has_sub_folders = 0, False
    with os.scandir(directory) as entries:
        for entry in entries:
            if entry.is_dir():
                has_sub_folders = True
            elif entry.is_file() and has_file_allowed_extension(entry.name, IMG_EXTENSIONS):
                images += 1
    return images, has_sub_folders


class FolderImages(ImageFolder):
    """``ImageFolder`` that also reads a flat folder (see the module docstring).

    Args:
        root: the folder.
        labelled: its classes are used as labels: a flat folder is refused.
    """

    def __init__(self, root: str, labelled: bool = False, **kwargs) -> None:
        self.labelled = labelled
        try:
            super().__init__(root, **kwargs)
        except FileNotFoundError as error:
            raise no_images(root, error) from None

    def find_classes(self, directory: str) -> Tuple[List[str], Dict[str, int]]:
        return folder_classes(directory, allow_flat=not self.labelled)


def images_in_sub_folders(directory: str) -> int:
    return sum(has_file_allowed_extension(name, IMG_EXTENSIONS)
               for root, _, names in os.walk(directory, followlinks=True) if root != directory
               for name in names)


def folder_classes(directory: str, allow_flat: bool = True) -> Tuple[List[str], Dict[str, int]]:
    """``ImageFolder.find_classes``, or one class for a flat folder (see the module docstring)."""
    if not os.path.isdir(directory):
        raise MissingInputError(f"{directory} is not a folder: point DATA_PATHS at a folder of "
                                "images (sub-folders optional).")
    at_top, has_sub_folders = top_level(directory)
    in_sub_folders = images_in_sub_folders(directory) if at_top and has_sub_folders else 0
    if not has_sub_folders or (at_top and not in_sub_folders):  # flat
        if not allow_flat:
            raise MissingInputError(
                f"{directory} has no class sub-folders with images, and its labels are used "
                "(LABEL_SOURCES disk_folder): put the images in one sub-folder per class.")
        return [ALL_IMAGES], {ALL_IMAGES: 0}
    if at_top > in_sub_folders:
        raise MissingInputError(
            f"{directory} has {at_top} images at its top and {in_sub_folders} in sub-folders: "
            "a folder is read either flat (its top images, none in sub-folders) or by class "
            "sub-folders (top images left out). Put the images to train on in one layout, or "
            "point DATA_PATHS at the folder that holds them.")
    if at_top:
        logging.warning(f"{at_top} images at the top of {directory} are left out: it has class "
                        "sub-folders, and only their images are read (as by torchvision's "
                        "ImageFolder). Move them into a sub-folder to train on them.")
    return ImageFolder.find_classes(None, directory)


def folder_image_count(directory: str) -> int:
    """The number of samples ``FolderImages(directory)`` has, without opening any image."""
    try:
        return len(ImageFolder.make_dataset(directory, folder_classes(directory)[1],
                                            extensions=IMG_EXTENSIONS))
    except FileNotFoundError as error:
        raise no_images(directory, error) from None


def no_images(directory: str, error: FileNotFoundError) -> FileNotFoundError:
    """The clearer error for a folder without images (``error`` itself if it is ours)."""
    if isinstance(error, MissingInputError):
        return error
    return MissingInputError(
        f"{directory} holds no images ({', '.join(IMG_EXTENSIONS)}), neither at its top nor in "
        "sub-folders: point DATA_PATHS at a folder of images.")

"""A ``disk_folder`` trains flat or with sub-folders (issue 20, item 7): ``FolderImages``."""
import pytest

from vissl_pirl_plugin.data.image_folder import FolderImages, folder_image_count
from vissl_pirl_plugin.data.robust_disk_dataset import RobustDiskImageDataset

from conftest import write_image_folder


def test_a_flat_folder_is_one_class_of_all_its_images(tmp_path):
    folder = write_image_folder(tmp_path / "flat", num_images=5, size=8, flat=True)
    images = FolderImages(str(folder))
    assert [path for path, _ in images.samples] == [str(folder / f"{i:03d}.jpg") for i in range(5)]
    assert set(images.targets) == {0} and folder_image_count(str(folder)) == 5


def test_class_sub_folders_are_read_as_imagefolder_reads_them(tmp_path):
    """Same samples in the same order: an existing run's memory bank keeps its indices."""
    from torchvision.datasets import ImageFolder

    folder = write_image_folder(tmp_path / "classes", num_images=6, size=8)
    assert FolderImages(str(folder)).samples == ImageFolder(str(folder)).samples
    assert folder_image_count(str(folder)) == 6


def test_images_at_the_top_of_a_class_folder_are_left_out_as_imagefolder_does(tmp_path, caplog):
    """A stray image must not change an existing run's indices."""
    from torchvision.datasets import ImageFolder

    folder = write_image_folder(tmp_path / "mixed", num_images=4, size=8)
    write_image_folder(folder, num_images=2, size=8, flat=True, seed=1)
    assert FolderImages(str(folder)).samples == ImageFolder(str(folder)).samples
    assert "2 images at the top of" in caplog.text and "are left out" in caplog.text


def test_a_flat_folder_is_refused_where_its_labels_are_used(tmp_path):
    folder = write_image_folder(tmp_path / "flat", num_images=2, size=8, flat=True)
    with pytest.raises(FileNotFoundError, match="has no class sub-folders with images, and its "
                                                "labels are used"):
        FolderImages(str(folder), labelled=True)
    assert len(FolderImages(str(write_image_folder(tmp_path / "c", 2, size=8)), labelled=True)) == 2


@pytest.mark.parametrize("sub_folder", [True, False])
def test_a_folder_without_images_names_itself(tmp_path, sub_folder):
    (tmp_path / "empty" / ("sub" if sub_folder else "")).mkdir(parents=True, exist_ok=True)
    (tmp_path / "empty" / "notes.txt").write_text("no images here")
    for read in (folder_image_count, FolderImages):
        with pytest.raises(FileNotFoundError, match="empty holds no images"):
            read(str(tmp_path / "empty"))


def test_the_data_source_reads_a_flat_folder(tmp_path):
    from vissl.config import AttrDict

    folder = write_image_folder(tmp_path / "flat", num_images=3, size=8, flat=True)
    cfg = AttrDict({"DATA": {"TRAIN": {
        "BATCHSIZE_PER_REPLICA": 2, "REMOVE_IMG_PATH_PREFIX": "", "NEW_IMG_PATH_PREFIX": "",
        "ENABLE_QUEUE_DATASET": False, "MMAP_MODE": True, "DEFAULT_GRAY_IMG_SIZE": 8}}})
    dataset = RobustDiskImageDataset(cfg, "disk_folder", str(folder), "TRAIN", "flat")
    assert len(dataset) == 3
    image, ok = dataset[2]
    assert ok and image.size == (8, 8) and dataset.image_path(2).endswith("002.jpg")


def test_stray_sub_folders_beside_a_flat_folder(tmp_path):
    """An empty or hidden sub-folder leaves a flat folder flat; a sub-folder with fewer images
    than the top (thumbnails, say) is not silently trained on instead of the top images."""
    folder = write_image_folder(tmp_path / "flat", num_images=4, size=8, flat=True)
    (folder / ".ipynb_checkpoints").mkdir()
    assert len(FolderImages(str(folder))) == 4
    write_image_folder(folder / "thumbs", num_images=1, size=8, flat=True)
    with pytest.raises(FileNotFoundError, match="has 4 images at its top and 1 in sub-folders"):
        FolderImages(str(folder))


def test_the_probes_read_a_labelled_folder_and_name_a_missing_one(tmp_path):
    from vissl_pirl_plugin.data.robust_disk_dataset import read_image_folder
    from vissl_pirl_plugin.utils.user_errors import MissingInputError

    images, labels = read_image_folder(write_image_folder(tmp_path / "c", 4, size=8))
    assert len(images) == 4 and labels == [0, 0, 1, 1]
    with pytest.raises(MissingInputError, match="nowhere is not a folder"):
        read_image_folder(tmp_path / "nowhere")

"""The embedded demo dataset built from Tux Paint stamps (a fake stamps folder here)."""
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vissl_pirl_plugin.tools import demo_data
from vissl_pirl_plugin.tools.demo_data import DemoDataError, build_demo_dataset, photograph_class


def write_stamp(path: Path, size=(40, 20), seed: int = 0) -> None:
    """An opaque coloured rectangle in the middle of a transparent stamp."""
    rng = np.random.default_rng(seed)
    rgba = np.zeros((size[1], size[0], 4), dtype=np.uint8)
    rgba[5:15, 10:30, :3] = rng.integers(0, 200, 3)
    rgba[5:15, 10:30, 3] = 255
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgba, "RGBA").save(path)


def fake_stamps(root: Path, per_class: int = 4) -> Path:
    for index, folder in enumerate(demo_data.CLASSES.values()):
        for k in range(per_class):
            write_stamp(root / folder / f"stamp{k}.png", seed=index * 10 + k)
    write_stamp(root / "animals/birds/cartoon/drawn.png")        # a drawing
    write_stamp(root / "animals/birds/robin_mirror.png")         # a mirrored duplicate
    write_stamp(root / "vehicles/auto/car.png")                  # not one of the classes
    (root / "animals/birds/robin.txt").write_text("a description")
    return root


def test_only_photographs_of_the_classes_are_used():
    assert photograph_class("animals/birds/robin.png") == "birds"
    assert photograph_class("animals/mammals/bovines/cow.png") == "mammals"
    assert photograph_class("food/fruit/cartoon/apple.png") is None
    assert photograph_class("animals/birds/robin_mirror.png") is None
    assert photograph_class("animals/birds/robin.ogg") is None
    assert photograph_class("vehicles/auto/car.png") is None


def test_dataset_layout_sizes_and_white_background(tmp_path):
    train = build_demo_dataset(tmp_path / "demo", stamps=fake_stamps(tmp_path / "stamps"))
    assert sorted(p.name for p in train.iterdir()) == sorted(demo_data.CLASSES)
    files = sorted(train.glob("*/*.jpg"))
    assert len(files) == 4 * len(demo_data.CLASSES)
    image = np.asarray(Image.open(train / "birds" / "animals_birds_stamp0.jpg"))
    assert image.shape == (demo_data.IMAGE_SIZE, demo_data.IMAGE_SIZE, 3)
    assert (image[:10] > 245).all()                      # transparent padding became white
    centre = image[demo_data.IMAGE_SIZE // 2, demo_data.IMAGE_SIZE // 2]
    assert (centre < 230).any()                          # the opaque stamp is kept


class ImagesRead(Exception):
    """Raised by a stand-in with the image folder a command was about to read."""


def test_default_build_is_where_the_probe_and_invariance_commands_look(tmp_path, monkeypatch):
    from vissl_pirl_plugin.tools import invariance, linear_probe
    monkeypatch.chdir(tmp_path)
    train = build_demo_dataset(demo_data.DEMO_ROOT, stamps=fake_stamps(tmp_path / "stamps"))

    def images_read(images, *args, **kwargs):
        raise ImagesRead(images)
    for command in (linear_probe, invariance):
        monkeypatch.setattr(command, "config_beside", lambda checkpoint: checkpoint)
        monkeypatch.setattr(command, "run_config", lambda path: None)
    monkeypatch.setattr(linear_probe, "run_probes", lambda config, checkpoint, images, *args,
                        **kwargs: images_read(images))
    monkeypatch.setattr(invariance, "read_image_folder", images_read)
    for command in (linear_probe, invariance):
        with pytest.raises(ImagesRead) as read:
            command.main(["--checkpoint", "run/checkpoint.torch"])
        assert read.value.args[0] == Path("data/demo/train") and train.resolve() == (
            tmp_path / read.value.args[0]).resolve()


def test_build_is_idempotent(tmp_path):
    stamps = fake_stamps(tmp_path / "stamps")
    train = build_demo_dataset(tmp_path / "demo", stamps=stamps)
    stamp = next(train.glob("birds/*.jpg"))
    stamp.unlink()
    # complete: a second call neither rebuilds nor needs the source
    assert build_demo_dataset(tmp_path / "demo", stamps=tmp_path / "missing") == train
    assert not stamp.exists()


def test_an_older_or_partial_build_is_replaced(tmp_path):
    stale = tmp_path / "demo" / "train" / "astronaut" / "000.jpg"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"old format")
    train = build_demo_dataset(tmp_path / "demo", stamps=fake_stamps(tmp_path / "stamps"))
    assert not stale.parent.exists() and sorted(p.name for p in train.iterdir()) == sorted(
        demo_data.CLASSES)


def test_a_folder_without_photographs_is_an_error(tmp_path):
    write_stamp(tmp_path / "stamps" / "vehicles" / "car.png")
    with pytest.raises(DemoDataError, match="No photographs"):
        build_demo_dataset(tmp_path / "demo", stamps=tmp_path / "stamps")


def test_no_apt_get_names_the_alternative(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no apt-get on PATH
    with pytest.raises(DemoDataError, match="--stamps DIR"):
        demo_data.download_package(tmp_path / "cache")


def test_a_failing_download_says_how_to_fix_it(tmp_path, monkeypatch):
    fake = tmp_path / "bin" / "apt-get"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'E: Unable to locate package' >&2\nexit 100\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(DemoDataError, match="apt-get update"):
        demo_data.download_package(tmp_path / "cache")

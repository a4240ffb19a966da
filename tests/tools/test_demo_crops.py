"""Random crops of the demo photographs' stamps (``make compare``'s ``--crops K``), on fake
stamps."""
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from vissl_pirl_plugin.data.robust_disk_dataset import read_image_folder
from vissl_pirl_plugin.tools import demo_crops, demo_data
from vissl_pirl_plugin.tools.demo_crops import build_crop_set
from vissl_pirl_plugin.tools.demo_data import DemoDataError, build_demo_dataset

from test_demo_data import fake_stamps


@pytest.fixture
def photographs_and_stamps(tmp_path):
    stamps = fake_stamps(tmp_path / "stamps", per_class=2)
    return build_demo_dataset(tmp_path / "demo", stamps=stamps), stamps


def pixels(path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.int16)


def test_k_distinct_crops_of_each_photographs_stamp_at_the_photographs_size(
        photographs_and_stamps, tmp_path):
    photographs, stamps = photographs_and_stamps
    # the crops are cut from the stamp, not from the 72-px photograph: blacken the photograph
    Image.new("RGB", (72, 72), "black").save(photographs / "birds" / "animals_birds_stamp0.jpg")
    out = build_crop_set(photographs, tmp_path / "crops", 3, stamps=stamps)
    crops = sorted((out / demo_crops.CROP_FOLDER).glob("*.jpg"))
    names = sorted(f"{p.stem}_{k:02d}.jpg" for p in photographs.rglob("*.jpg") for k in range(3))
    assert [c.name for c in crops] == names
    first = [pixels(c) for c in crops if c.name.startswith("animals_birds_stamp0_")]
    assert all(crop.shape == (72, 72, 3) for crop in first)
    assert np.abs(first[0] - first[1]).max() > 40 and np.abs(first[1] - first[2]).max() > 40
    colour = pixels(stamps / "animals" / "birds" / "stamp0.png")[10, 20]  # the stamp's colour
    for crop in first:
        white = (crop > 240).all(axis=-1)
        stamp = (np.abs(crop - colour) < 16).all(axis=-1)
        assert (white | stamp).mean() > 0.9
    assert any((np.abs(crop - colour) < 16).all(axis=-1).any() for crop in first)


def test_a_build_is_the_same_everywhere_and_is_not_redone(photographs_and_stamps, tmp_path):
    photographs, stamps = photographs_and_stamps
    one = build_crop_set(photographs, tmp_path / "one", 2, stamps=stamps)
    two = build_crop_set(photographs, tmp_path / "two", 2, stamps=stamps)
    for crop in (one / "all").glob("*.jpg"):
        assert crop.read_bytes() == (two / "all" / crop.name).read_bytes()
    other_seed = build_crop_set(photographs, tmp_path / "three", 2, stamps=stamps, seed=1)
    assert any(crop.read_bytes() != (other_seed / "all" / crop.name).read_bytes()
               for crop in (one / "all").glob("*.jpg"))
    # complete: the same call again needs no stamps; other parameters or photographs rebuild
    assert build_crop_set(photographs, one, 2, stamps=tmp_path / "missing") == one
    build_crop_set(photographs, one, 1, stamps=stamps)
    assert len(list((one / "all").glob("*.jpg"))) == len(list(photographs.rglob("*.jpg")))
    next(photographs.rglob("*.jpg")).unlink()
    build_crop_set(photographs, one, 1, stamps=stamps)
    assert len(list((one / "all").glob("*.jpg"))) == len(list(photographs.rglob("*.jpg")))


def test_many_crops_keep_their_draw_order_in_name_order(photographs_and_stamps, tmp_path):
    photographs, stamps = photographs_and_stamps
    out = build_crop_set(photographs, tmp_path / "crops", 101, stamps=stamps)
    names = sorted(p.name for p in (out / "all").glob("animals_birds_stamp0_*.jpg"))
    assert names[:2] == ["animals_birds_stamp0_000.jpg", "animals_birds_stamp0_001.jpg"]
    assert names[-1] == "animals_birds_stamp0_100.jpg" and len(names) == 101


def test_bad_input_is_named(photographs_and_stamps, tmp_path):
    photographs, stamps = photographs_and_stamps
    own = tmp_path / "pictures" / "all" / "holiday.jpg"
    own.parent.mkdir(parents=True)
    own.write_bytes(b"a photograph of the user's")
    with pytest.raises(DemoDataError, match="did not write; choose another"):
        build_crop_set(photographs, tmp_path / "pictures", 2, stamps=stamps)
    assert own.exists()
    with pytest.raises(DemoDataError, match="inside --photographs"):
        build_crop_set(photographs, photographs / "crops", 2, stamps=stamps)
    Image.new("RGB", (72, 72), "white").save(photographs / "birds" / "my_own_photo.jpg")
    with pytest.raises(DemoDataError, match="my_own_photo.jpg.*--stamps DIR"):
        build_crop_set(photographs, tmp_path / "crops", 2, stamps=stamps)
    with pytest.raises(DemoDataError, match="No photographs"):
        build_crop_set(tmp_path / "stamps", tmp_path / "crops", 2, stamps=stamps)
    with pytest.raises(ValueError, match="at least 1 crop"):
        build_crop_set(photographs, tmp_path / "crops", 0, stamps=stamps)


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs Debian's dpkg-deb")
def test_from_the_debian_package_the_image_folder_holds_the_crops_alone(
        photographs_and_stamps, tmp_path, monkeypatch):
    photographs, stamps = photographs_and_stamps
    monkeypatch.setattr(demo_data, "INSTALLED_STAMPS", tmp_path / "not-installed")
    root = tmp_path / "package"
    shutil.copytree(stamps, root / demo_data.STAMPS_PREFIX)
    (root / "DEBIAN").mkdir()
    (root / "DEBIAN" / "control").write_text(
        f"Package: {demo_data.PACKAGE}\nVersion: 1.0\nArchitecture: all\n"
        "Maintainer: test <test@example.org>\nDescription: fake stamps\n")
    out = tmp_path / "crops"
    cache = out / "cache"  # build_crop_set's default: inside the image folder
    cache.mkdir(parents=True)
    deb = cache / f"{demo_data.PACKAGE}_1.0_all.deb"
    subprocess.run(["dpkg-deb", "--build", str(root), str(deb)], check=True,
                   capture_output=True)
    # a failed build keeps the package for the next try
    extra = photographs / "birds" / "my_own_photo.jpg"
    Image.new("RGB", (72, 72), "white").save(extra)
    with pytest.raises(DemoDataError, match="my_own_photo"):
        build_crop_set(photographs, out, 2)
    assert deb.exists()
    extra.unlink()
    build_crop_set(photographs, out, 2)
    assert sorted(p.name for p in out.iterdir()) == [".complete-v1-2-72-0", "all"]
    images, labels = read_image_folder(out)
    assert len(images) == 2 * len(list(photographs.rglob("*.jpg"))) and set(labels) == {0}

"""Random crops of the demo photographs' stamps (``make compare``'s ``--crops K``), on fake
stamps."""
import numpy as np
import pytest
from PIL import Image

from vissl_pirl_plugin.tools import demo_crops
from vissl_pirl_plugin.tools.demo_crops import build_crop_set
from vissl_pirl_plugin.tools.demo_data import DemoDataError, build_demo_dataset

from test_demo_data import fake_stamps


@pytest.fixture
def photographs_and_stamps(tmp_path):
    stamps = fake_stamps(tmp_path / "stamps", per_class=2)
    return build_demo_dataset(tmp_path / "demo", stamps=stamps), stamps


def pixels(path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image, dtype=np.int16)


def test_k_distinct_crops_of_each_photograph_at_the_photographs_size(photographs_and_stamps,
                                                                      tmp_path):
    photographs, stamps = photographs_and_stamps
    out = build_crop_set(photographs, tmp_path / "crops", 3, stamps=stamps)
    crops = sorted((out / demo_crops.CROP_FOLDER).glob("*.jpg"))
    names = sorted(f"{p.stem}_{k:02d}.jpg" for p in photographs.rglob("*.jpg") for k in range(3))
    assert [c.name for c in crops] == names
    first = [pixels(c) for c in crops if c.name.startswith("animals_birds_stamp0_")]
    assert all(crop.shape == (72, 72, 3) for crop in first)
    assert np.abs(first[0] - first[1]).max() > 40 and np.abs(first[1] - first[2]).max() > 40
    # cut from the stamp: its white margin and its one colour, no other
    photograph = pixels(photographs / "birds" / "animals_birds_stamp0.jpg")
    colour = photograph[36, 36]
    for crop in first:
        white = (crop > 240).all(axis=-1)
        stamp = (np.abs(crop - colour) < 16).all(axis=-1)
        assert (white | stamp).mean() > 0.9


def test_a_build_is_the_same_everywhere_and_is_not_redone(photographs_and_stamps, tmp_path):
    photographs, stamps = photographs_and_stamps
    one = build_crop_set(photographs, tmp_path / "one", 2, stamps=stamps)
    two = build_crop_set(photographs, tmp_path / "two", 2, stamps=stamps)
    for crop in (one / "all").glob("*.jpg"):
        assert crop.read_bytes() == (two / "all" / crop.name).read_bytes()
    other_seed = build_crop_set(photographs, tmp_path / "three", 2, stamps=stamps, seed=1)
    assert any(crop.read_bytes() != (other_seed / "all" / crop.name).read_bytes()
               for crop in (one / "all").glob("*.jpg"))
    # complete: the same call again needs no stamps; other parameters rebuild
    assert build_crop_set(photographs, one, 2, stamps=tmp_path / "missing") == one
    build_crop_set(photographs, one, 1, stamps=stamps)
    assert len(list((one / "all").glob("*.jpg"))) == len(list(photographs.rglob("*.jpg")))


def test_a_photograph_without_its_stamp_is_named(photographs_and_stamps, tmp_path):
    photographs, stamps = photographs_and_stamps
    Image.new("RGB", (72, 72), "white").save(photographs / "birds" / "my_own_photo.jpg")
    with pytest.raises(DemoDataError, match="my_own_photo.jpg.*--stamps DIR"):
        build_crop_set(photographs, tmp_path / "crops", 2, stamps=stamps)
    with pytest.raises(DemoDataError, match="No photographs"):
        build_crop_set(tmp_path / "stamps", tmp_path / "crops", 2, stamps=stamps)
    with pytest.raises(ValueError, match="at least 1 crop"):
        build_crop_set(photographs, tmp_path / "crops", 0, stamps=stamps)

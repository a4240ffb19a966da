"""Shared fixtures. Importing the plugin registers its VISSL components."""
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import vissl_pirl_plugin  # noqa: F401

REPO = Path(__file__).resolve().parents[1]


def write_image_folder(root: Path, num_images: int, size: int = 96, seed: int = 0) -> Path:
    """A disk_folder of smooth random colour images in two class sub-folders."""
    rng = np.random.default_rng(seed)
    for index in range(num_images):
        folder = root / f"class{index % 2}"
        folder.mkdir(parents=True, exist_ok=True)
        low = rng.integers(0, 256, size=(4, 4, 3)).astype(np.uint8)
        Image.fromarray(low).resize((size, size), Image.BILINEAR).save(folder / f"{index:03d}.jpg")
    return root


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    return write_image_folder(tmp_path / "images", num_images=4)


def python() -> str:
    return sys.executable

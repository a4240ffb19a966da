"""Shared fixtures. Importing the plugin registers its VISSL components."""
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import vissl_pirl_plugin  # noqa: F401

REPO = Path(__file__).resolve().parents[1]
PAPER = "config=pretrain/pirl/pirl_jigsaw_4node_resnet50"


def write_image_folder(root: Path, num_images: int, size: int = 96, seed: int = 0,
                       flat: bool = False) -> Path:
    """A disk_folder of smooth random colour images in two class sub-folders (``flat``: all
    directly in ``root``)."""
    rng = np.random.default_rng(seed)
    for index in range(num_images):
        folder = root if flat else root / f"class{index % 2}"
        folder.mkdir(parents=True, exist_ok=True)
        low = rng.integers(0, 256, size=(4, 4, 3)).astype(np.uint8)
        Image.fromarray(low).resize((size, size), Image.BILINEAR).save(folder / f"{index:03d}.jpg")
    return root


def on_tensors(batched_op):
    """A batched torch op of ``batched/photometric`` (uint8 ``(N, 3, H, W)``, ``(N,)`` params)
    called as ``per_image/photometric``'s ops are: uint8 ``(N, H, W, 3)`` arrays and numpy params, so that
    the tests of the loader-side ops run unchanged on the device-side ones (on CPU tensors)."""
    import torch

    def run(crops, *params):
        pixels = torch.from_numpy(np.ascontiguousarray(crops)).permute(0, 3, 1, 2)
        out = batched_op(pixels, *(torch.as_tensor(np.asarray(p)) for p in params))
        return out.permute(0, 2, 3, 1).numpy()
    run.__name__ = f"batched_{batched_op.__name__}"
    return run


@pytest.fixture
def in_tmp_dir(tmp_path: Path, monkeypatch) -> None:
    """VISSL saves train_config.yaml to CHECKPOINT.DIR ('.') when it converts a config."""
    monkeypatch.chdir(tmp_path)


def compose(*overrides: str):
    """The config the launcher composes from these command-line overrides."""
    from vissl_pirl_plugin.engine.launcher import compose_config

    return compose_config(list(overrides))[1]


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    return write_image_folder(tmp_path / "images", num_images=4)


def python() -> str:
    return sys.executable


def pytest_report_header(config) -> str:
    """The end-to-end tests need a few GB of scratch space for ResNet-50 checkpoints; print what
    there is, so a CI log that fails on a full disk says so at the top."""
    base = Path(config.option.basetemp or tempfile.gettempdir()).resolve()
    existing = next(folder for folder in (base, *base.parents) if folder.exists())
    free = shutil.disk_usage(existing).free
    return f"scratch space free in {base}: {free / 2**30:.1f} GiB"


def pytest_collection_modifyitems(config, items) -> None:
    """Tests marked ``gpu`` (tests/gpu/, the GPU check kit) are skipped without CUDA."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="gpu: needs a CUDA device (make gpu-check on a GPU machine, "
                                   "see docs/performance.md)")
    for item in items:
        if item.get_closest_marker("gpu") is not None:
            item.add_marker(skip)

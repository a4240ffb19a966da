"""The extension point: a pretext transform defined only here trains PIRL through overrides.

The subprocess imports this module by name (``pretext.module``), which registers
the transform, exactly as a user's own module would be.
"""
import os
import sys

import pytest
import torch
from torchvision.transforms import v2

from vissl_pirl_plugin.data.transforms.pretext import register_pretext

from conftest import REPO, write_image_folder


@register_pretext("test_grayscale_crop")
class GrayscaleCrop:
    """I^t: a random crop shown in grayscale (a user's colour-invariance pretext)."""

    def __init__(self, size: int = 64) -> None:
        self.crop = v2.Compose([v2.RandomResizedCrop(size, antialias=True), v2.Grayscale(3)])

    def __call__(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.crop(pixels)


@pytest.mark.slow
def test_user_pretext_trains_through_overrides_alone(tmp_path, monkeypatch):
    from test_training_e2e import LAUNCHER, paper_config_on_cpu, run

    images = write_image_folder(tmp_path / "images", num_images=4)
    overrides = paper_config_on_cpu(images, tmp_path / "ckpt")
    overrides[0] = "config=pretrain/pirl/pirl_rotation_4node_resnet50"
    overrides.append("++config.DATA.TRAIN.TRANSFORMS.0.pretext="
                     "{name:test_grayscale_crop,module:test_pretext_extension,size:48}")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO / "tests"), *sys.path]))
    result = run([LAUNCHER, *overrides], cwd=tmp_path)
    assert "iter: 1;" in result.stdout + result.stderr
    assert (tmp_path / "ckpt" / "model_final_checkpoint_phase0.torch").is_file()

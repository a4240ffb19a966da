"""Jigsaw geometry (Appendix A.1), the PIRL transform, and the collator."""
import numpy as np
import pytest
import torch
from PIL import Image
from vissl.data.collators import get_collator
from vissl.data.ssl_transforms import get_transform

from vissl_pirl_plugin.data.image_utils import to_rgb_uint8
from vissl_pirl_plugin.data.transforms.common.jigsaw import extract_jigsaw_patches, jigsaw_patch_offsets
from vissl_pirl_plugin.data.transforms.pirl_jigsaw_transform import ImgPilToPirlJigsaw


def test_one_64px_patch_inside_each_cell_of_a_255_crop():
    cell = 255 // 3
    for seed in range(50):
        offsets = jigsaw_patch_offsets(255, 3, 64, torch.Generator().manual_seed(seed))
        assert offsets.shape == (9, 2)
        for k, (top, left) in enumerate(offsets.tolist()):
            row, col = divmod(k, 3)
            assert row * cell <= top and top + 64 <= (row + 1) * cell
            assert col * cell <= left and left + 64 <= (col + 1) * cell


def test_patches_are_cut_at_their_offsets():
    # each pixel stores its own coordinates, so a patch tells where it came from
    rows, cols = torch.meshgrid(torch.arange(255), torch.arange(255), indexing="ij")
    image = torch.stack([rows, cols, torch.zeros_like(rows)])
    offsets = jigsaw_patch_offsets(255, 3, 64, torch.Generator().manual_seed(0))
    patches = extract_jigsaw_patches(image, offsets, 64)
    assert patches.shape == (9, 3, 64, 64)
    for patch, (top, left) in zip(patches, offsets.tolist()):
        assert patch[0, 0, 0] == top and patch[1, 0, 0] == left
        assert patch[0, -1, -1] == top + 63 and patch[1, -1, -1] == left + 63


def test_patch_offsets_vary_within_cells():
    offsets = torch.stack([jigsaw_patch_offsets(255, 3, 64) for _ in range(200)])
    assert offsets[:, 0, 0].unique().numel() > 10  # random position, not a fixed centre crop


def test_patch_offsets_are_drawn_as_vissl_draws_them():
    """VISSL's ImgPatchesFromTensor: np.random.randint(0, 21) in an 85-px cell, 0 to 20 (ours
    drew 0 to 21 before, so neighbouring patches could touch); uniform over those 21 values."""
    generator = torch.Generator().manual_seed(0)
    offsets = torch.stack([jigsaw_patch_offsets(255, 3, 64, generator) for _ in range(2000)])
    jitter = offsets % 85  # cells start at multiples of 85
    counts = torch.bincount(jitter.reshape(-1), minlength=21)
    assert counts.numel() == 21 and jitter.min() == 0 and jitter.max() == 20
    assert (counts.float() / counts.sum() - 1 / 21).abs().max() < 0.01  # 36000 draws
    ends = offsets.view(-1, 3, 3, 2)[..., 1] + 64  # a patch's right edge, row by row
    assert (ends[..., :2] < offsets.view(-1, 3, 3, 2)[:, :, 1:, 1]).all()  # never touching


@pytest.mark.parametrize("patch_size", [85, 90])
def test_patch_without_room_in_its_cell_is_rejected(patch_size):
    with pytest.raises(ValueError, match="does not fit in a grid cell of 85 pixels with room"):
        jigsaw_patch_offsets(255, 3, patch_size)


def _photo(mode="RGB", size=(300, 200)):
    array = np.random.default_rng(0).integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    return Image.fromarray(array).convert(mode)


def test_transform_outputs_image_and_nine_patches():
    image, patches = ImgPilToPirlJigsaw()(_photo())
    assert image.shape == (3, 224, 224) and image.dtype == torch.float32
    assert patches.shape == (9, 3, 64, 64)


def test_patches_are_shuffled_and_jittered_independently():
    # a flat grey image: without jitter all patches would be identical
    flat = Image.new("RGB", (300, 300), (120, 120, 120))
    _, patches = ImgPilToPirlJigsaw(color_jitter=(0.4, 0.4, 0.4, 0.0), photometric_p=0.0)(flat)
    means = patches.mean(dim=(1, 2, 3))
    assert means.unique().numel() >= 5  # one shared jitter would give a single value


@pytest.mark.parametrize("mode", ["L", "RGBA", "CMYK", "P", "I;16", "I", "F"])
def test_any_image_mode_and_tiny_images(mode):
    if mode in ("I;16", "I", "F"):
        array = np.linspace(0, 60000, 20 * 20).reshape(20, 20)
        image = Image.fromarray(array.astype(np.uint16 if mode == "I;16" else np.float32))
        image = image if mode != "I" else image.convert("I")
    else:
        image = _photo(mode, size=(20, 20))
    pixels = to_rgb_uint8(image)
    assert pixels.shape == (3, 20, 20) and pixels.dtype == torch.uint8
    assert 0 < pixels.float().mean() < 255  # 16-bit and float images are rescaled, not clipped
    view, patches = ImgPilToPirlJigsaw()(image)
    assert view.shape == (3, 224, 224) and patches.shape == (9, 3, 64, 64)


def test_vissl_pipeline_keeps_the_sample_index_and_collates():
    transform = get_transform([{"name": "ImgPilToPirlJigsaw", "image_crop_size": 96}])
    samples = []
    for index, valid in ((11, 1), (12, -1), (13, 1)):
        sample = {"data": [_photo()], "label": [index], "data_valid": [valid], "data_idx": [index]}
        samples.append(transform(sample))
    assert [s["label"] for s in samples] == [[11], [12], [13]]
    batch = get_collator("pirl_collator", {"transformed_key": "patches"})(samples)
    assert batch["images"][0].shape == (3, 3, 96, 96)
    assert batch["patches"][0].shape == (27, 3, 64, 64)
    # the placeholder of a failed image gets ignore_index, never a bank index
    assert batch["label"][0].tolist() == [11, -1, 13]
    assert batch["data_valid"][0].tolist() == [True, False, True]


def test_collator_rejects_non_pirl_samples():
    with pytest.raises(ValueError, match="ImgPilToPirlJigsaw"):
        get_collator("pirl_collator", {})([{"data": [torch.zeros(3, 4, 4)], "label": [0],
                                             "data_valid": [1]}])

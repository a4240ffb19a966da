"""Rotation, rotation + jigsaw, fixed permutation sets and the pretext registry (issue #3)."""
import math

import numpy as np
import pytest
import torch
from PIL import Image
from vissl.data.collators import get_collator
from vissl.data.ssl_transforms import get_transform

from vissl_pirl_plugin.engine.config_validation import validate_transforms
from vissl_pirl_plugin.data.transforms.jigsaw_pretext import JigsawPretext
from vissl_pirl_plugin.data.transforms.common.permutations import all_permutations, permutation_set
from vissl_pirl_plugin.data.transforms.pirl_pair_transform import ImgPilToPirlPair
from vissl_pirl_plugin.data.transforms.pretext import build_pretext, register_pretext
from vissl_pirl_plugin.data.transforms.rotation_pretext import RotationJigsawPretext, RotationPretext, rotate

NO_AUGMENTATION = {"color_jitter": [0.0, 0.0, 0.0, 0.0], "photometric_p": 0.0, "grayscale_p": 0.0,
                   "flip_p": 0.0}


def asymmetric_pixels(size: int = 64) -> torch.Tensor:
    """An image whose four rotations all differ (a bright top-left corner block)."""
    pixels = torch.zeros(3, size, size, dtype=torch.uint8)
    pixels[:, : size // 4, : size // 2] = 255
    return pixels


def test_rotation_draws_all_four_angles_after_augmentation():
    pretext = RotationPretext(crop_size=64, crop_scale=(1.0, 1.0), **NO_AUGMENTATION)
    pixels = asymmetric_pixels()
    seen = set()
    for _ in range(60):
        out = pretext(pixels)
        matches = [k for k in range(4) if torch.equal(out, rotate(pixels, k))]
        assert len(matches) == 1
        seen.add(matches[0])
    assert seen == {0, 1, 2, 3}


def test_rotation_keeps_the_sample_index_label():
    transform = get_transform([{"name": "ImgPilToPirlPair", "image_crop_size": 64,
                                "pretext": {"name": "rotation", "crop_size": 64}}])
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (80, 90, 3), np.uint8))
    samples = [transform({"data": [image], "label": [i], "data_valid": [1], "data_idx": [i]})
               for i in (7, 8)]
    assert [s["label"] for s in samples] == [[7], [8]]  # VISSL's ImgRotatePil overwrites it
    batch = get_collator("pirl_collator", {"transformed_key": "rotated"})(samples)
    assert batch["rotated"][0].shape == (2, 3, 64, 64) and batch["label"][0].tolist() == [7, 8]


def test_rotation_jigsaw_rotates_before_cutting_patches(monkeypatch):
    """With one fixed rotation, rotation_jigsaw equals jigsaw applied to the rotated image."""
    monkeypatch.setattr("vissl_pirl_plugin.data.transforms.rotation_pretext.random_quarter_turns", lambda: 1)
    params = dict(crop_scale=(1.0, 1.0), num_permutations=1, **NO_AUGMENTATION)
    rows = torch.arange(255).view(1, 255, 1).expand(3, 255, 255)
    pixels = (rows % 256).to(torch.uint8)  # rows differ, columns do not: rotation matters
    torch.manual_seed(3)
    combined = RotationJigsawPretext(**params)(pixels)
    torch.manual_seed(3)
    jigsaw = JigsawPretext(**params)
    assert torch.equal(combined, jigsaw(rotate(pixels, 1)))
    torch.manual_seed(3)
    assert not torch.equal(combined, jigsaw(pixels))


@pytest.mark.parametrize("count", [1, 2, 10, 100])
def test_permutation_set_size_seed_and_distinctness(count):
    perms = permutation_set(count, seed=5)
    assert perms.shape == (count, 9)
    assert len({tuple(p) for p in perms.tolist()}) == count
    assert all(sorted(p) == list(range(9)) for p in perms.tolist())
    assert torch.equal(perms, permutation_set(count, seed=5).clone())
    if count > 1:
        assert not torch.equal(perms, permutation_set(count, seed=6))


def test_max_hamming_spreads_permutations_more_than_uniform():
    def min_distance(perms):
        d = (perms[:, None, :] != perms[None, :, :]).sum(-1)
        return int(d[~torch.eye(len(perms), dtype=torch.bool)].min())
    assert min_distance(permutation_set(30, selection="maxhamming")) >= 7
    assert min_distance(permutation_set(30, selection="maxhamming")) > min_distance(
        permutation_set(30, selection="uniform"))


def test_all_permutations_and_full_set():
    perms = all_permutations(4)
    assert perms.shape == (24, 4) and len({tuple(p) for p in perms.tolist()}) == 24
    assert permutation_set(math.factorial(4), num_items=4).shape == (24, 4)


def test_jigsaw_uses_only_the_fixed_permutations():
    jigsaw = JigsawPretext(num_permutations=3, permutation_seed=1)
    allowed = {tuple(p) for p in permutation_set(3, seed=1).tolist()}
    assert {tuple(jigsaw.permutation().tolist()) for _ in range(50)} == allowed


@pytest.mark.parametrize("count", [0, math.factorial(9) + 1])
def test_permutation_count_outside_range_is_rejected(count):
    with pytest.raises(ValueError, match=r"num_permutations=\d+ must be in \[1, 9! = 362880\]"):
        permutation_set(count)


def test_unknown_names_are_clear_errors():
    with pytest.raises(ValueError, match="Unknown PIRL pretext transform 'spin'.*'rotation'"):
        build_pretext({"name": "spin"})
    with pytest.raises(ValueError, match=r"TRANSFORMS\[0\].name='ImgPilToNothing'"):
        validate_transforms([{"name": "ImgPilToNothing"}])
    with pytest.raises(ValueError, match=r"TRANSFORMS\[0\] \(ImgPilToPirlJigsaw\).*num_permutations"):
        validate_transforms([{"name": "ImgPilToPirlJigsaw", "num_permutations": 0}])


def test_npid_pair_is_the_image_alone():
    image = Image.new("RGB", (50, 40), (10, 200, 30))
    views = ImgPilToPirlPair(pretext=None)(image)
    assert len(views) == 1 and views[0].shape == (3, 224, 224)
    batch = get_collator("pirl_collator", {})([{"data": [views], "label": [3], "data_valid": [1],
                                               "data_idx": [3]}])
    assert set(batch) == {"images", "label", "data_valid", "data_idx"}


def test_duplicate_pretext_name_is_refused():
    with pytest.raises(ValueError, match="'jigsaw' is already registered"):
        register_pretext("jigsaw")(type("Other", (), {}))

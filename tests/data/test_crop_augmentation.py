"""The authors' per-crop recipe: each PIL op of VISSL's PIRL config, reproduced on uint8 batches to
+-1 grey level, and the rates at which VISSL applies them."""
import numpy as np
import pytest
import torch
from PIL import Image, ImageEnhance, ImageOps

from vissl_pirl_plugin.data.transforms.batched import photometric as batched
from vissl_pirl_plugin.data.transforms.batched.crop_augmentation import (
    BatchedCropAugmentation,
    _uniform_int as batched_uniform_int,
)
from vissl_pirl_plugin.data.transforms.per_image.crop_augmentation import (
    POSTERIZE_BITS,
    SOLARIZE_THRESHOLD,
    CropAugmentation,
    _uniform_int,
)
from vissl_pirl_plugin.data.transforms.per_image.photometric import (
    autocontrast,
    grayscale,
    posterize,
    sharpness,
    solarize,
)

from conftest import on_tensors

RNG = np.random.default_rng(0)
CROPS = RNG.integers(0, 256, (3, 30, 34, 3), dtype=np.uint8)
LOW_CONTRAST = (CROPS // 4 + 90).astype(np.uint8)  # values 90-153: autocontrast has work to do
OFF = {"color_jitter": (0.0, 0.0, 0.0, 0.0), "photometric_p": 0.0, "grayscale_p": 0.0,
       "flip_p": 0.0}


def pil_reference(crops, pil_op, values):
    return np.stack([np.asarray(pil_op(Image.fromarray(crop), value))
                     for crop, value in zip(crops, values)])


def augmenters(**params):
    """``CropAugmentation(**params)`` and its batched twin, as callables on uint8 (N, 3, H, W)."""
    recipe = CropAugmentation(**params)
    generator = torch.Generator().manual_seed(0)
    return {"loader": recipe, "device": lambda crops: BatchedCropAugmentation(recipe)(crops,
                                                                                     generator)}


@pytest.mark.parametrize("implementation", ["loader", "device"])
@pytest.mark.parametrize("ops, pil_op, values, crops", [
    ((posterize, on_tensors(batched.posterize)), ImageOps.posterize, [4, 6, 8], CROPS),
    ((solarize, on_tensors(batched.solarize)), ImageOps.solarize, [0, 128, 256], CROPS),
    ((sharpness, on_tensors(batched.sharpness)),
     lambda image, f: ImageEnhance.Sharpness(image).enhance(f), [0.1, 1.0, 1.9], CROPS),
    ((lambda crops, _: autocontrast(crops),
      lambda crops, _: on_tensors(batched.autocontrast)(crops)),
     lambda image, _: ImageOps.autocontrast(image), [0, 0, 0], LOW_CONTRAST),
    ((lambda crops, _: grayscale(crops), lambda crops, _: on_tensors(batched.grayscale)(crops)),
     lambda image, _: image.convert("L").convert("RGB"), [0, 0, 0], CROPS),
], ids=["posterize", "solarize", "sharpness", "autocontrast", "grayscale"])
def test_each_op_matches_vissls_pil_op_per_crop(implementation, ops, pil_op, values, crops):
    """+-1 grey level on the loader side (OpenCV's arithmetic), PIL's output exactly on the
    device (PIL's own fixed point and truncation)."""
    ours = ops[implementation == "device"]
    expected = pil_reference(crops, pil_op, values).astype(int)
    tolerance = 0 if implementation == "device" else 1
    assert np.abs(ours(crops.copy(), np.array(values)).astype(int) - expected).max() <= tolerance


@pytest.mark.parametrize("op", [autocontrast, on_tensors(batched.autocontrast)],
                         ids=["loader", "device"])
def test_autocontrast_leaves_a_flat_channel_alone(op):
    flat = np.full((1, 5, 5, 3), 77, dtype=np.uint8)
    assert np.array_equal(op(flat), flat)


@pytest.mark.parametrize("implementation", ["loader", "device"])
def test_flip_matches_pil_per_crop(implementation):
    augment = augmenters(**dict(OFF, flip_p=1.0))[implementation]
    out = augment(torch.from_numpy(CROPS).permute(0, 3, 1, 2)).permute(0, 2, 3, 1).numpy()
    expected = pil_reference(CROPS, lambda image, _: image.transpose(Image.FLIP_LEFT_RIGHT),
                             [0, 0, 0])
    assert np.array_equal(out, expected)


@pytest.mark.parametrize("uniform_int", [_uniform_int, lambda uniforms, bounds: batched_uniform_int(
    torch.from_numpy(uniforms), bounds).numpy()], ids=["loader", "device"])
def test_integer_parameters_cover_vissls_closed_ranges_evenly(uniform_int):
    uniforms = (np.arange(5 * 257) + 0.5) / (5 * 257)
    for bounds in (POSTERIZE_BITS, SOLARIZE_THRESHOLD):
        values, counts = np.unique(uniform_int(uniforms, bounds), return_counts=True)
        assert values.tolist() == list(range(bounds[0], bounds[1] + 1))
        assert counts.min() == counts.max()


def rate(seen: np.ndarray, expected: float) -> None:
    assert abs(seen.mean() - expected) < 0.03, (seen.mean(), expected)  # 4 standard errors


@pytest.mark.parametrize("implementation", ["loader", "device"])
def test_default_rates_are_the_authors(implementation):
    """Grayscale 0.2, the photometric group 0.66 and flip 0.5, each crop drawing its own."""
    torch.manual_seed(0)
    count = 4000
    ramp = np.linspace(100, 150, 6 * 6).reshape(6, 6)
    crops = np.stack([ramp, ramp.T, 250 - ramp], axis=-1).astype(np.uint8)  # no symmetry
    batch = torch.from_numpy(np.repeat(crops[None], count, axis=0)).permute(0, 3, 1, 2)
    defaults = CropAugmentation()
    assert (defaults.photometric_p, defaults.grayscale_p, defaults.flip_p) == (0.66, 0.2, 0.5)

    def run(**only):
        out = augmenters(**dict(OFF, **only))[implementation](batch).permute(0, 2, 3, 1).numpy()
        return out.astype(int)
    gray = run(grayscale_p=0.2)
    rate((gray[..., 0] == gray[..., 1]).all(axis=(1, 2)), 0.2)
    flipped = run(flip_p=0.5)
    rate((flipped == crops[:, ::-1]).all(axis=(1, 2, 3)), 0.5)
    assert ((flipped == crops) | (flipped == crops[:, ::-1])).all()
    stretched = run(photometric_p=0.66)  # autocontrast, last of the group, stretches to 0-255
    applied = ((stretched.min(axis=(1, 2)) == 0) & (stretched.max(axis=(1, 2)) >= 254)).all(axis=1)
    rate(applied, 0.66)
    assert (stretched[~applied] == crops).all()


@pytest.mark.parametrize("implementation", ["loader", "device"])
def test_the_input_crops_are_not_modified(implementation):
    pixels = torch.from_numpy(CROPS).permute(0, 3, 1, 2)
    before = pixels.clone()
    augmenters(photometric_p=1.0, grayscale_p=1.0, flip_p=1.0, blur_p=1.0)[implementation](pixels)
    assert torch.equal(pixels, before)


def test_a_probability_out_of_range_is_refused():
    with pytest.raises(ValueError, match=r"photometric_p=1.5 is a probability: use a value in"):
        CropAugmentation(photometric_p=1.5)

"""The batched colour jitter: each op equals torchvision's op on the PIL images VISSL's ColorJitter
works on, to +-1 grey level (and PIL's blends without bias); every crop draws its own factors and
order."""
import itertools

import cv2
import numpy as np
import pytest
import torch
import torchvision.transforms.v2.functional as F
from PIL import Image, ImageEnhance

from vissl_pirl_plugin.data.transforms.batched import photometric as batched
from vissl_pirl_plugin.data.transforms.batched.crop_augmentation import BatchedCropAugmentation
from vissl_pirl_plugin.data.transforms.per_image.color_jitter import OPS, ColorJitter
from vissl_pirl_plugin.data.transforms.per_image.crop_augmentation import CropAugmentation
from vissl_pirl_plugin.data.transforms.per_image.photometric import (
    brightness,
    contrast,
    hue,
    saturation,
    sharpness,
)

from conftest import on_tensors

CROPS = np.random.default_rng(0).integers(0, 256, (3, 40, 48, 3), dtype=np.uint8)


DEVICE_OPS = {op: on_tensors(getattr(batched, op.__name__)) for op in OPS}


def device_jitter(strengths):
    """The batched jitter of ``ColorJitter(strengths)``, called as ``ColorJitter`` is."""
    augmentation = BatchedCropAugmentation(CropAugmentation(color_jitter=strengths))

    def run(crops, uniforms, orders):
        return on_tensors(augmentation.jitter)(crops, uniforms, orders)
    return run


@pytest.mark.parametrize("implementation", ["loader", "device"])
@pytest.mark.parametrize("op, reference, factors", [
    (brightness, F.adjust_brightness, [1.3, 0.6, 1.0]),
    (contrast, F.adjust_contrast, [1.4, 0.6, 1.0]),
    (saturation, F.adjust_saturation, [1.4, 0.6, 0.0]),
    (hue, F.adjust_hue, [0.2, -0.2, 0.5]),
], ids=["brightness", "contrast", "saturation", "hue"])
def test_each_op_matches_torchvisions_op_on_pil_images(implementation, op, reference, factors):
    op = DEVICE_OPS[op] if implementation == "device" else op
    expected = np.stack([np.array(reference(Image.fromarray(crop), factor))
                         for crop, factor in zip(CROPS, factors)]).astype(int)
    tolerance = 0 if implementation == "device" else 1  # the device's ops are PIL's exactly
    assert np.abs(op(CROPS, np.array(factors)).astype(int) - expected).max() <= tolerance


@pytest.mark.parametrize("implementation", ["loader", "device"])
def test_each_crop_of_a_batch_gets_its_own_factors_in_the_colorjitter_ranges(implementation):
    flat = np.full((200, 8, 8, 3), 128, dtype=np.uint8)
    uniforms = torch.rand(200, 4, generator=torch.Generator().manual_seed(0)).numpy()
    orders = np.tile(np.arange(4), (200, 1))
    jitter = (device_jitter if implementation == "device" else ColorJitter)((0.4, 0.0, 0.0, 0.0))
    out = jitter(flat, uniforms, orders).astype(np.float32)
    assert np.abs(out[:, 0, 0, 0] - 128 * (0.6 + 0.8 * uniforms[:, 0])).max() <= 1
    assert np.unique(out[:, 0, 0, 0]).size > 50


@pytest.mark.parametrize("implementation", ["loader", "device"])
def test_the_order_of_the_ops_is_each_crop_own(implementation):
    """Brightness then contrast differs from contrast then brightness once values clip."""
    crops = np.repeat(CROPS[:1], 2, axis=0)
    uniforms = np.array([[1.0, 0.0, 0.5, 0.5]] * 2)  # brightness 1.4, contrast 0.6
    orders = np.array([[0, 1, 2, 3], [1, 0, 2, 3]])
    jitter = (device_jitter if implementation == "device" else ColorJitter)((0.4, 0.4, 0.0, 0.0))
    out = jitter(crops, uniforms, orders)
    for row, order in enumerate(orders):
        assert np.array_equal(out[row], jitter(crops[row:row + 1], uniforms[:1], order[None])[0])
    assert not np.array_equal(out[0], out[1])


def test_bad_jitter_settings():
    with pytest.raises(ValueError, match="brightness, contrast, saturation, hue"):
        ColorJitter((0.4, 0.4))
    with pytest.raises(ValueError, match="hue=0.7 must be in"):
        ColorJitter((0.4, 0.4, 0.4, 0.7))


@pytest.mark.parametrize("implementation", ["loader", "device"])
def test_the_batch_equals_each_crop_jittered_alone_in_its_own_order(implementation):
    """Hue runs once on the whole batch, the other ops before and after it; every crop must still
    see exactly its own order."""
    orders = np.array(list(itertools.permutations(range(4))))  # all 24 orders, one crop each
    crops = np.random.default_rng(1).integers(0, 256, (len(orders), 12, 10, 3), dtype=np.uint8)
    uniforms = np.random.default_rng(2).random((len(orders), 4))
    jitter = ColorJitter((0.4, 0.4, 0.4, 0.2))
    factors = jitter.low + (jitter.high - jitter.low) * uniforms
    ops = OPS
    if implementation == "device":
        jitter, ops = device_jitter((0.4, 0.4, 0.4, 0.2)), [DEVICE_OPS[op] for op in OPS]
    out = jitter(crops, uniforms, orders)
    for crop, order, crop_factors, result in zip(crops, orders, factors, out):
        expected = crop[None]
        for op in order:
            expected = ops[op](expected, crop_factors[op:op + 1])
        assert np.array_equal(result, expected[0])


@pytest.mark.parametrize("op", [hue, DEVICE_OPS[hue]], ids=["loader", "device"])
def test_hue_equals_torchvision_on_every_colour(op):
    every = np.arange(1 << 24, dtype=np.uint32)
    colours = np.stack([every >> 16, every >> 8, every], axis=-1).astype(np.uint8)
    image = colours.reshape(1, 4096, 4096, 3)
    expected = np.asarray(F.adjust_hue(Image.fromarray(image[0]), -0.3))
    assert np.array_equal(op(image, np.array([-0.3]))[0], expected)


@pytest.mark.parametrize("op, enhance", [
    (saturation, lambda image, factor: ImageEnhance.Color(image).enhance(factor)),
    (sharpness, lambda image, factor: ImageEnhance.Sharpness(image).enhance(factor)),
    (on_tensors(batched.saturation), lambda image, factor: ImageEnhance.Color(image).enhance(factor)),
    (on_tensors(batched.sharpness),
     lambda image, factor: ImageEnhance.Sharpness(image).enhance(factor)),
], ids=["saturation-loader", "sharpness-loader", "saturation-device", "sharpness-device"])
def test_blends_truncate_as_pil_does(op, enhance):
    """Off by at most 1 and not biased: PIL truncates the blend where OpenCV would round."""
    rng = np.random.default_rng(3)
    crops = np.stack([cv2.GaussianBlur(crop, (9, 9), 3) for crop in
                      rng.integers(0, 256, (12, 48, 48, 3), dtype=np.uint8)])
    factors = rng.uniform(0.1, 1.9, len(crops))
    expected = np.stack([np.asarray(enhance(Image.fromarray(crop), float(factor)))
                         for crop, factor in zip(crops, factors)]).astype(int)
    difference = op(crops, factors).astype(int) - expected
    assert np.abs(difference).max() <= (0 if op.__name__.startswith("batched_") else 1)
    assert abs(difference.mean()) < 0.02

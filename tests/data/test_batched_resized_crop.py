"""The batched random resized crop of the device path: torchvision's draws, PIL's bilinear resize."""
import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms import RandomResizedCrop as TorchvisionCrop

from vissl_pirl_plugin.data.transforms.batched.resized_crop import random_regions, resize_regions

from test_resized_crop import RATIO, SCALE, region_statistics


def test_regions_follow_torchvisions_distribution():
    height, width, draws = 300, 200, 4000
    sizes = torch.tensor([[height, width]] * draws)
    ours = region_statistics(random_regions(sizes, SCALE, RATIO,
                                            torch.Generator().manual_seed(0)).tolist(),
                             height, width)
    torch.manual_seed(0)
    image = torch.zeros(3, height, width)
    theirs = region_statistics([TorchvisionCrop.get_params(image, list(SCALE), list(RATIO))
                                for _ in range(draws)], height, width)
    assert ours == pytest.approx(theirs, abs=0.02)


def test_each_image_of_a_batch_draws_within_its_own_size():
    sizes = torch.tensor([[300, 200], [20, 500], [64, 64], [1, 1]] * 250)
    regions = random_regions(sizes, (0.6, 1.0), RATIO, torch.Generator().manual_seed(1))
    top, left, height, width = regions.T
    assert (top >= 0).all() and (left >= 0).all() and (height >= 1).all() and (width >= 1).all()
    assert (top + height <= sizes[:, 0]).all() and (left + width <= sizes[:, 1]).all()
    areas = (height * width).double() / sizes.prod(dim=1)
    assert (areas[sizes[:, 0] == 300] >= 0.59).all()


def test_the_fallback_is_torchvisions_central_crop():
    image = torch.zeros(3, 10, 1000)  # no region of the area and aspect ratio fits
    expected = TorchvisionCrop.get_params(image, list(SCALE), list(RATIO))
    drawn = random_regions(torch.tensor([[10, 1000]]), SCALE, RATIO, torch.Generator())
    assert tuple(drawn[0].tolist()) == expected == (0, 493, 10, 13)


def pil_resized(image: np.ndarray, region, size: int) -> np.ndarray:
    top, left, height, width = region
    return np.asarray(Image.fromarray(image[top:top + height, left:left + width])
                      .resize((size, size), Image.BILINEAR)).astype(int)


def test_random_regions_enlarged_or_shrunk_match_pils_bilinear_resize():
    """The issue's bar: within 1 grey level of PIL on average and 3 at the 99th percentile, on
    the same region; measured here: never more than 1 apart, 0.01 on average."""
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (300, 200, 3), dtype=np.uint8),  # noise: the hardest case
              np.kron(rng.integers(0, 256, (30, 20, 3)), np.ones((10, 10, 1))).astype(np.uint8)]
    canvas = torch.zeros(2, 3, 320, 240, dtype=torch.uint8)  # padded, as pirl_collator pads
    for slot, image in zip(canvas, images):
        slot[:, :300, :200] = torch.from_numpy(image).permute(2, 0, 1)
    differences = []
    generator = torch.Generator().manual_seed(0)
    for size in (96, 64):  # regions of 24-300 px: enlarged, shrunk or both
        for _ in range(20):
            regions = random_regions(torch.tensor([[300, 200]] * 2), (0.01, 1.0), (0.5, 2.0),
                                     generator)
            resized = resize_regions(canvas, regions, size).permute(0, 2, 3, 1).numpy()
            for image, region, ours in zip(images, regions.tolist(), resized):
                differences.append(np.abs(ours.astype(int) - pil_resized(image, region, size)))
    differences = np.concatenate([d.reshape(-1) for d in differences])
    assert differences.max() <= 1 and differences.mean() < 0.05
    assert np.percentile(differences, 99) <= 1


@pytest.mark.parametrize("region", [(5, 7, 40, 30), (0, 0, 300, 200), (100, 50, 200, 7),
                                    (0, 0, 1, 1)])
def test_a_region_comes_out_the_same_whatever_the_padding(region):
    """Up to float rounding: the padding's zero weights change the order of the sums."""
    image = torch.randint(0, 256, (3, 300, 200), dtype=torch.uint8,
                          generator=torch.Generator().manual_seed(2))
    alone = resize_regions(image[None], torch.tensor([region]), 48)
    padded = torch.zeros(1, 3, 512, 400, dtype=torch.uint8)
    padded[0, :, :300, :200] = image
    difference = (resize_regions(padded, torch.tensor([region]), 48).int() - alone.int()).abs()
    assert difference.max() <= 1 and (difference > 0).float().mean() < 0.01


def test_the_resize_keeps_float32_under_autocast_and_a_lowered_matmul_precision():
    image = torch.randint(0, 256, (1, 3, 120, 90), dtype=torch.uint8,
                          generator=torch.Generator().manual_seed(3))
    region = torch.tensor([[10, 5, 100, 80]])
    exact = resize_regions(image, region, 64)
    torch.set_float32_matmul_precision("medium")
    try:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert torch.equal(resize_regions(image, region, 64), exact)
        assert torch.get_float32_matmul_precision() == "medium"  # the caller's, restored
    finally:
        torch.set_float32_matmul_precision("highest")

"""PIRL's pair made on the training device (``augmentation=on_device``): the loader-side
transform's geometry, draws and distributions, for a whole batch at once; the same views as the
implementation before issue 26, compiled or not, compiled in at most 100 launches per batch."""
import hashlib

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.stats import ks_2samp

from vissl_pirl_plugin.data.pirl_collator import pirl_collator
from vissl_pirl_plugin.data.transforms.batched.pirl_augmentation import DevicePirlAugmentation
from vissl_pirl_plugin.data.transforms.pirl_jigsaw_transform import ImgPilToPirlJigsaw
from vissl_pirl_plugin.data.transforms.pirl_pair_transform import ImgPilToPirlPair
from vissl_pirl_plugin.utils.host_reads import HostReadDetector
from vissl_pirl_plugin.utils.launch_counter import LaunchCounter

OFF = {"color_jitter": (0.0, 0.0, 0.0, 0.0), "photometric_p": 0.0, "grayscale_p": 0.0,
       "flip_p": 0.0, "patch_flip_p": 0.0}
IDENTITY = {"mean": (0.0, 0.0, 0.0), "std": (1 / 255, 1 / 255, 1 / 255)}  # views = pixel values


def photographs(count: int, seed: int = 0):
    """Smooth colour images of a few sizes (enlarged and shrunk crops)."""
    rng = np.random.default_rng(seed)
    sizes = [(120, 90), (90, 140), (255, 255), (60, 60)]
    return [Image.fromarray(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)).resize(
        sizes[index % len(sizes)], Image.BILINEAR) for index in range(count)]


def batch_of(transform, images):
    samples = [{"data": [transform(image)], "label": [index], "data_valid": [1],
                "data_idx": [index]} for index, image in enumerate(images)]
    return pirl_collator(samples)


def device_views(transform, images, seed: int = 0, augmentation=None):
    batch = batch_of(transform, images)
    augmentation = augmentation or DevicePirlAugmentation(transform)
    return augmentation(batch["pixels"][0], batch["pixel_sizes"][0],
                        torch.Generator().manual_seed(seed))


def test_the_views_have_the_collators_keys_shapes_and_memory_format():
    images = photographs(5)
    views = device_views(ImgPilToPirlJigsaw(on_device=True), images)
    loader = pirl_collator([{"data": [ImgPilToPirlJigsaw()(image)], "label": [0],
                             "data_valid": [1], "data_idx": [0]} for image in images])
    for key in ("images", "patches"):
        assert views[key].shape == loader[key][0].shape and views[key].dtype == torch.float32
        assert views[key].is_contiguous(memory_format=torch.channels_last)
    assert views["images"].shape == (5, 3, 224, 224) and views["patches"].shape == (45, 3, 64, 64)
    rotation = ImgPilToPirlPair(pretext={"name": "rotation", "crop_size": 96}, on_device=True)
    assert device_views(rotation, images)["patches"].shape == (5, 3, 96, 96)
    assert list(device_views(ImgPilToPirlPair(on_device=True), images)) == ["images"]


def test_patches_are_windows_of_the_jigsaw_crop_at_vissls_offsets_in_a_random_order():
    """A 255-px image with a full-image jigsaw crop: every patch is the image's window at its
    cell's corner plus 0-20 px, the nine from nine cells, in a permuted order."""
    image = position_coded_image()
    transform = ImgPilToPirlJigsaw(on_device=True, jigsaw_crop_scale=(1.0, 1.0), **OFF,
                                   **IDENTITY)
    patches = device_views(transform, [Image.fromarray(image)] * 40)["patches"]
    patches = patches.round().to(torch.uint8).permute(0, 2, 3, 1).numpy().reshape(40, 9, 64, 64, 3)
    offsets_seen, orders = set(), set()
    for sample in patches:
        cells = []
        for patch in sample:
            top, left = int(patch[0, 0, 0]), int(patch[0, 0, 1])
            assert np.array_equal(patch, image[top:top + 64, left:left + 64])
            cells.append(top // 85 * 3 + left // 85)
            offsets_seen.update((top % 85, left % 85))
        assert sorted(cells) == list(range(9))
        orders.add(tuple(cells))
    assert offsets_seen == set(range(21))  # 0 to 20, as VISSL draws them
    assert len(orders) == 40


def position_coded_image() -> np.ndarray:
    """255 x 255 pixels whose red and green values are their row and column."""
    rows, columns = np.meshgrid(np.arange(255), np.arange(255), indexing="ij")
    noise = np.random.default_rng(0).integers(0, 256, (255, 255))
    return np.stack([rows, columns, noise], axis=-1).astype(np.uint8)


def patch_cells(transform, count: int) -> list:
    """The cell (0-8, row by row) each patch of ``count`` samples was cut from."""
    patches = device_views(transform, [Image.fromarray(position_coded_image())] * count)["patches"]
    corners = patches.round().to(torch.uint8)[:, :2, 0, 0].reshape(count, 9, 2).long()
    return (corners[..., 0] // 85 * 3 + corners[..., 1] // 85).tolist()


def test_a_fixed_permutation_set_is_drawn_from_evenly():
    transform = ImgPilToPirlJigsaw(on_device=True, num_permutations=3, jigsaw_crop_scale=(1, 1),
                                   **OFF, **IDENTITY)
    allowed = {tuple(order) for order in DevicePirlAugmentation(transform).pretext
               .permutations.tolist()}
    orders = [tuple(cells) for cells in patch_cells(transform, 60)]
    assert set(orders) == allowed  # only the set's 3 orders, and each of them


def test_rotations_are_quarter_turns_of_the_crop_each_drawn_uniformly():
    image = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    recipe = {key: value for key, value in OFF.items() if key != "patch_flip_p"}
    transform = ImgPilToPirlPair(pretext={"name": "rotation", "crop_size": 64,
                                          "crop_scale": (1.0, 1.0), **recipe}, on_device=True,
                                 image_crop_size=16, **recipe, **IDENTITY)
    rotated = device_views(transform, [Image.fromarray(image)] * 400)["patches"]
    rotated = rotated.round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    turns = [next(k for k in range(4) if np.array_equal(view, np.rot90(image, k)))
             for view in rotated]
    counts = np.bincount(turns, minlength=4)
    assert counts.min() > 60  # 100 expected of each


def test_a_step_seed_retraces_and_every_image_draws_its_own():
    images = photographs(6)
    transform = ImgPilToPirlJigsaw(on_device=True)
    first, again = device_views(transform, images, seed=3), device_views(transform, images, seed=3)
    other = device_views(transform, images, seed=4)
    assert all(torch.equal(first[key], again[key]) for key in first)
    assert not torch.equal(first["images"], other["images"])
    same = photographs(1) * 6
    views = device_views(transform, same)["images"]
    assert len({view.sum().item() for view in views}) == 6


def view_statistics(views):
    """Per-view mean and standard deviation of the uint8 values, and whether it is grey."""
    pixels = views.round().clamp(0, 255).reshape(len(views), 3, -1)
    grey = (pixels[:, 0] == pixels[:, 1]).all(dim=1) & (pixels[:, 1] == pixels[:, 2]).all(dim=1)
    return pixels.mean(dim=(1, 2)).numpy(), pixels.std(dim=(1, 2)).numpy(), grey.numpy()


def test_the_views_are_distributed_as_the_loader_sides():
    """The authors' recipe at a small size, both paths on the same 600 images: the per-view
    statistics cannot be told apart (KS p >= 0.01) and the grey rates agree."""
    torch.manual_seed(0)
    images = photographs(600, seed=5)
    params = dict(image_crop_size=32, jigsaw_crop_size=96, patch_size=24, **IDENTITY)
    loader = ImgPilToPirlJigsaw(**params)
    loader_views = [loader(image) for image in images]
    loader_images = torch.stack([views[0] for views in loader_views])
    loader_patches = torch.cat([views[1] for views in loader_views])
    device = device_views(ImgPilToPirlJigsaw(on_device=True, **params), images)
    for ours, theirs in ((device["images"], loader_images), (device["patches"], loader_patches)):
        (mean, std, grey), (mean_l, std_l, grey_l) = view_statistics(ours), view_statistics(theirs)
        assert ks_2samp(mean, mean_l).pvalue >= 0.01
        assert ks_2samp(std, std_l).pvalue >= 0.01
        assert abs(grey.mean() - grey_l.mean()) < 0.04


def test_an_unbounded_image_side_is_refused_on_the_device():
    with pytest.raises(ValueError, match=r"max_image_side=None.*Use max_image_side <= 2048"):
        ImgPilToPirlJigsaw(on_device=True, max_image_side=None)
    with pytest.raises(ValueError, match=r"max_image_side=4096"):
        ImgPilToPirlJigsaw(on_device=True, max_image_side=4096)
    assert ImgPilToPirlJigsaw(max_image_side=None).max_image_side is None  # loader side: unused


def test_pretexts_without_a_batched_version_are_refused_with_the_fix():
    with pytest.raises(ValueError, match="RotationJigsawPretext has no batched version.*Drop "
                                         "on_device"):
        ImgPilToPirlPair(pretext={"name": "rotation_jigsaw"}, on_device=True)


def test_the_workers_hand_over_capped_uint8_pixels():
    transform = ImgPilToPirlJigsaw(on_device=True, max_image_side=100)
    wide = transform(Image.new("RGB", (300, 150), (10, 20, 30)))
    assert wide.dtype == torch.uint8 and wide.shape == (3, 50, 100)
    assert transform(Image.new("L", (40, 30), 7)).shape == (3, 30, 40)  # any mode, kept
    assert transform(Image.new("RGB", (90, 20))).shape == (3, 20, 90)  # small: kept
    with pytest.raises(ValueError, match="max_image_side=0 must be a positive"):
        ImgPilToPirlJigsaw(on_device=True, max_image_side=0)


def test_the_collator_pads_the_pixels_into_one_canvas_and_keeps_failed_samples_out():
    pixels = [torch.full((3, h, w), v, dtype=torch.uint8) for h, w, v in
              ((30, 40, 1), (50, 20, 2))]
    batch = pirl_collator([{"data": [p], "label": [i], "data_valid": [1 - 2 * i],
                            "data_idx": [i + 5]} for i, p in enumerate(pixels)])
    canvas, sizes = batch["pixels"][0], batch["pixel_sizes"][0]
    assert canvas.shape == (2, 50, 40, 3) and sizes.tolist() == [[30, 40], [50, 20]]
    assert (canvas[0, :30, :40] == 1).all() and (canvas[0, 30:] == 0).all()
    assert (canvas[1, :50, :20] == 2).all() and (canvas[1, :, 20:] == 0).all()
    assert batch["label"][0].tolist() == [0, -1] and batch["data_idx"][0].tolist() == [5, 6]


@pytest.mark.parametrize("pretext", [None, {"name": "rotation", "crop_size": 32}],
                         ids=["jigsaw", "rotation"])
def test_the_augmentation_never_reads_a_value_back_to_the_host(pretext):
    """On a GPU such a read would make the step wait for the device (tests/gpu checks the same
    with CUDA's own sync check, blocking copies included)."""
    params = dict(image_crop_size=32, blur_p=0.5, photometric_p=0.66)
    transform = (ImgPilToPirlJigsaw(on_device=True, **params) if pretext is None else
                 ImgPilToPirlPair(pretext=pretext, on_device=True, **params))
    batch = batch_of(transform, photographs(4))
    augmentation = DevicePirlAugmentation(transform)
    generator = torch.Generator().manual_seed(0)
    with HostReadDetector() as detector:
        augmentation(batch["pixels"][0], batch["pixel_sizes"][0], generator)
    assert detector.reads == []


@pytest.mark.parametrize("pretext", [None, {"name": "rotation"}, {"name": "jigsaw",
                                                                   "num_permutations": 10}],
                         ids=["jigsaw", "rotation", "jigsaw-fixed-set"])
def test_building_the_augmentation_leaves_the_global_rng_alone(pretext):
    """The train step builds it at the first step of the first epoch a process runs: a draw
    from the global RNG there made a resumed run draw other negatives than the uninterrupted
    one (seen in tests/test_reliability.py)."""
    torch.manual_seed(5)
    before = torch.get_rng_state()
    transform = (ImgPilToPirlJigsaw(on_device=True) if pretext is None else
                 ImgPilToPirlPair(pretext=pretext, on_device=True))
    DevicePirlAugmentation(transform)
    assert torch.equal(torch.get_rng_state(), before)


SMALL = {"image_crop_size": 32, "jigsaw_crop_size": 48, "patch_size": 12}
FROZEN_CASES = {
    "jigsaw": lambda: ImgPilToPirlJigsaw(on_device=True, **SMALL, **IDENTITY),
    "jigsaw-all-ops": lambda: ImgPilToPirlJigsaw(on_device=True, photometric_p=1.0, grayscale_p=0.5,
                                                 num_permutations=10, **SMALL, **IDENTITY),
    "rotation-blur": lambda: ImgPilToPirlPair(pretext={"name": "rotation", "crop_size": 32},
                                              on_device=True, image_crop_size=32, blur_p=0.5,
                                              **IDENTITY),
}
# SHA-256 (first 16 hex digits) of the uint8 views of ``photographs(8, seed=7)`` with generator
# seed 11, as the implementation before issue 26 made them (commit 620fe66, one op at a time)
FROZEN_DIGESTS = {
    "jigsaw": {"images": "69d2c97c14e2fcc3", "patches": "e3d54d57931b12d2"},
    "jigsaw-all-ops": {"images": "508a390e0b9b432f", "patches": "dfc5b732a2dd4a60"},
    "rotation-blur": {"images": "7a90320ef2684158", "patches": "c5778139e07caacb"},
}


@pytest.mark.parametrize("case", sorted(FROZEN_CASES))
def test_the_views_are_bit_for_bit_those_of_the_implementation_before_issue_26(case):
    """Same generator state, same views: the draws keep their calls and order, the packed and
    fused ops PIL's arithmetic."""
    views = device_views(FROZEN_CASES[case](), photographs(8, seed=7), seed=11)
    assert all(torch.equal(view, view.round()) for view in views.values())  # pixel values
    digests = {key: hashlib.sha256(view.round().to(torch.uint8).contiguous().numpy().tobytes())
               .hexdigest()[:16] for key, view in views.items()}
    assert digests == FROZEN_DIGESTS[case]


@pytest.mark.slow
def test_compiled_the_paper_configs_views_are_the_eager_ones_in_at_most_100_launches():
    """The paper's config (I at 224, the jigsaw crop at 255, 64-px patches, the authors' recipe),
    as CUDA runs it: compiled (inductor's kernels counted by inductor), a batch of 8 in at most
    100 launches (974 before issue 26), its views equal to the eager ones bit for bit, on
    canvases of two sizes (one compiled graph)."""
    transform = ImgPilToPirlJigsaw(on_device=True)
    compiled = DevicePirlAugmentation(transform, compile=True)
    eager = DevicePirlAugmentation(transform, compile=False)
    for seed, images in enumerate([photographs(8), photographs(8, seed=1)[::-1]]):
        batch = batch_of(transform, images)
        canvas, sizes = batch["pixels"][0], batch["pixel_sizes"][0]
        expected = eager(canvas, sizes, torch.Generator().manual_seed(seed))
        compiled(canvas, sizes, torch.Generator().manual_seed(seed))  # compiles at the first
        with LaunchCounter() as launches:
            views = compiled(canvas, sizes, torch.Generator().manual_seed(seed))
        assert launches.total <= 100, launches.by_op
        assert launches.compiled > 0
        assert all(torch.equal(views[key], expected[key]) for key in expected)

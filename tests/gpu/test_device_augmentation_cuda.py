"""``augmentation=on_device`` on CUDA (``pytest -m gpu``; skipped without CUDA): the batched ops
give the CPU tensors' results, a batch is augmented without a host sync, and compiled (as it
runs on CUDA) in at most 100 launches, equal to the eager views bit for bit."""
import pytest
import torch
from PIL import Image

from vissl_pirl_plugin.data.pirl_collator import pirl_collator
from vissl_pirl_plugin.data.transforms.batched import photometric as ops
from vissl_pirl_plugin.data.transforms.batched.resized_crop import resize_regions
from vissl_pirl_plugin.data.transforms.batched.pirl_augmentation import DevicePirlAugmentation
from vissl_pirl_plugin.data.transforms.pirl_jigsaw_transform import ImgPilToPirlJigsaw
from vissl_pirl_plugin.utils.launch_counter import LaunchCounter

pytestmark = pytest.mark.gpu
CUDA = torch.device("cuda")
CROPS = torch.randint(0, 256, (4, 3, 40, 36), dtype=torch.uint8,
                      generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("op, params", [
    (ops.brightness, [0.6, 1.0, 1.2, 1.4]), (ops.contrast, [0.6, 1.0, 1.2, 1.4]),
    (ops.saturation, [0.0, 0.6, 1.2, 1.4]), (ops.hue, [-0.2, 0.0, 0.1, 0.5]),
    (ops.posterize, [4, 5, 6, 8]), (ops.sharpness, [0.1, 0.5, 1.0, 1.9]),
    (ops.solarize, [0, 100, 200, 256]),
], ids=lambda value: getattr(value, "__name__", ""))
def test_each_op_on_cuda_equals_the_cpu_tensors_result(op, params):
    on_cpu = op(CROPS, torch.tensor(params))
    assert torch.equal(op(CROPS.to(CUDA), torch.tensor(params, device=CUDA)).cpu(), on_cpu)


def test_autocontrast_grayscale_and_the_resize_on_cuda_equal_the_cpus():
    assert torch.equal(ops.autocontrast(CROPS.to(CUDA)).cpu(), ops.autocontrast(CROPS))
    assert torch.equal(ops.grayscale(CROPS.to(CUDA)).cpu(), ops.grayscale(CROPS))
    regions = torch.tensor([[0, 0, 40, 36], [5, 3, 11, 9], [2, 1, 30, 20], [0, 0, 1, 1]])
    difference = (resize_regions(CROPS.to(CUDA), regions.to(CUDA), 24).cpu().int()
                  - resize_regions(CROPS, regions, 24).int()).abs()
    assert difference.max() <= 1 and (difference > 0).float().mean() < 0.01


def test_a_batch_is_augmented_without_a_host_sync():
    transform = ImgPilToPirlJigsaw(on_device=True, blur_p=0.5)
    images = [Image.new("RGB", (500 - 40 * i, 375), (30 * i, 90, 200)) for i in range(4)]
    batch = pirl_collator([{"data": [transform(image)], "label": [i], "data_valid": [1],
                            "data_idx": [i]} for i, image in enumerate(images)])
    canvas, sizes = batch["pixels"][0].to(CUDA), batch["pixel_sizes"][0].to(CUDA)
    augmentation = DevicePirlAugmentation(transform)
    generator = torch.Generator(device=CUDA).manual_seed(0)
    augmentation(canvas, sizes, generator)  # the first call copies the tables to the device
    torch.cuda.set_sync_debug_mode("error")
    try:
        views = augmentation(canvas, sizes, generator)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert views["images"].shape == (4, 3, 224, 224) and views["patches"].shape == (36, 3, 64, 64)


def test_compiled_the_views_are_the_eager_ones_in_at_most_100_launches():
    """The paper's config at batch 32: Triton's kernels (inductor's count) and the eager draws,
    sorts and matrix products; the views those of the same step run eagerly on CUDA."""
    transform = ImgPilToPirlJigsaw(on_device=True)
    images = [Image.new("RGB", (500 - 9 * i, 375 + 4 * i), (7 * i, 90, 200 - 5 * i))
              for i in range(32)]
    batch = pirl_collator([{"data": [transform(image)], "label": [i], "data_valid": [1],
                            "data_idx": [i]} for i, image in enumerate(images)])
    canvas, sizes = batch["pixels"][0].to(CUDA), batch["pixel_sizes"][0].to(CUDA)
    compiled = DevicePirlAugmentation(transform)  # compiled on CUDA
    eager = DevicePirlAugmentation(transform, compile=False)
    expected = eager(canvas, sizes, torch.Generator(device=CUDA).manual_seed(3))
    compiled(canvas, sizes, torch.Generator(device=CUDA).manual_seed(3))  # compiles
    with LaunchCounter() as launches:
        views = compiled(canvas, sizes, torch.Generator(device=CUDA).manual_seed(3))
    assert launches.total <= 100, launches.by_op
    assert all(torch.equal(views[key], expected[key]) for key in expected)

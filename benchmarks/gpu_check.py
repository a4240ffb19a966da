"""The GPU check kit (issues 13, 20): what only a CUDA machine shows, measured in one run.

    python benchmarks/gpu_check.py [--out benchmarks/gpu_check.json] [--device cuda]
        [--check NAME ...] [--workdir FOLDER] [--checkpoint FILE]

On a lent GPU machine run it through ``benchmarks/gpu_lease.py``, which installs the wheels the
machine lacks, gives every check its own process, timeout and a fresh work folder, and writes
the JSON, logs and a summary (docs/performance.md, "GPU check kit").

The checks, each a function of the device (``--device cpu`` runs them at small sizes, as
``tests/test_gpu_check.py`` does; on a machine without CUDA the default ``--device cuda``
prints why it skips and exits 0):

1. ``loss_and_bank``: the loss (forward, backward) and the memory-bank update at ImageNet size
   (1,281,167 x 128, batch 32, 32000 negatives), with the plugin's per-step hooks
   (``NonFiniteGuardHook`` at ``check_period`` 1, ``MemoryBankUpdateHook``), under
   ``torch.cuda.set_sync_debug_mode("error")`` on CUDA and ``HostReadDetector`` on the CPU: any
   host read in the step is reported with where it happened. Reports ms per step and peak GPU
   memory.
2. ``train_and_resume_{fp16,bf16}`` (``_fp32`` on the CPU): the paper config through the
   plugin's launcher on 1 GPU with NCCL and PyTorch AMP, a few epochs on images cut from
   scikit-image's photographs, then a second launch that resumes from the checkpoint before the
   last epoch (the bank saved from the GPU) and trains that epoch again. VISSL 0.1.6 autocasts
   to fp16 only (``torch.cuda.amp.autocast()`` in its train step): for bf16 the kit's launcher
   (``--launch``) makes that call autocast to bf16. Checks the resumed bank equals the saved one
   and every loss is finite; reports whether the resumed epoch retraced the first run's bank
   exactly (cuDNN may not be deterministic, so this is reported, not required).
3. ``linear_iteration``: one iteration of ``eval_resnet_pirl_in1k_linear`` on a checkpoint of
   check 2 (``--checkpoint``; SyncBN conversion, AMP settings and the feature heads on the GPU).
4. ``train_step``: images/s of one training step of ours against VISSL's built-in PIRL (its
   heads, transform chain and ``nce_loss_with_memory``; see ``run_benchmarks.make_train_step``)
   at the paper's sizes, in fp32 and under fp16 autocast, side by side in this process, with
   peak GPU memory. VISSL's negative-sampling table for the ImageNet-size bank is built once
   (a Python loop of about a minute). The batch is augmented once before timing: the numbers
   are the model, loss and bank, not data loading.
5. ``device_augmentation`` (issue 19, ``augmentation=on_device``): on ImageNet-size JPEGs
   (``run_benchmarks.imagenet_size_jpegs``), the batched augmentation on the device against
   PIL (resized crops: mean, 99th percentile and largest difference; each photometric op's
   largest difference), under the host-sync check; its time for a batch of 32 (of 500 x 375
   images: a batch mixing portrait and landscape pads to 500 x 500, a third more pixels); and
   end-to-end samples/s with 8 loader workers (decode, augment, collate, copy, forward, loss,
   backward, SGD step, bank update; 40 steps timed after the workers' first batches are
   consumed, prefetch 1) of VISSL's built-in PIRL, ours on the CPU and ours with
   ``on_device``, with the augmentation's share of the step.
6. ``launch_bound`` (issue 26): is the paper's step host-bound or GPU-bound? For the loader-side
   views (copied from pinned memory) and ``augmentation=on_device`` (the canvas copied and
   augmented), eager, with ``MODEL.COMPILE`` and with ``MODEL.COMPILE.MODE: reduce-overhead``
   (CUDA graphs) (``ModelCompileHook``; one compilation for both feeds): the host's time to
   launch a step against the GPU's time to run it (``SegmentClock``:
   a sleep kernel holds the GPU while the host launches each piece of the step, then CUDA
   events time the GPU's run of it), the launches per step (``LaunchCounter``), and samples/s
   of 20 steps back to back reading the loss every step as VISSL's step does; under fp16
   autocast. Each configuration is written to ``--out`` once measured.

Prints a table and writes every measurement as JSON.
"""
import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from types import SimpleNamespace
from typing import Callable, Dict, Iterator, List, Optional, Sequence

import numpy as np
import torch
import torchvision.transforms.functional
from PIL import Image, ImageEnhance, ImageOps

REPO = Path(__file__).resolve().parents[1]
for folder in (REPO, REPO / "benchmarks", REPO / "tests"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

import vissl_pirl_plugin  # noqa: E402,F401 - applies vissl_compat before VISSL is imported
from run_benchmarks import (  # noqa: E402
    BATCH, DIM, IMAGENET, NEGATIVES, STEP_OVERRIDES, backward, forward_and_loss,
    imagenet_size_jpegs, make_train_step, median_seconds, source_photographs, train_once,
    training_parts, update, vissl_nce_loss)
from vissl.data.collators import get_collator  # noqa: E402

from vissl_pirl_plugin.data.robust_disk_dataset import load_rgb_image  # noqa: E402
from vissl_pirl_plugin.data.transforms.batched import photometric as batched_photometric  # noqa: E402
from vissl_pirl_plugin.data.transforms.batched.resized_crop import (  # noqa: E402
    random_regions, resize_regions)
from vissl_pirl_plugin.data.transforms.batched.pirl_augmentation import (  # noqa: E402
    DevicePirlAugmentation)
from vissl_pirl_plugin.data.transforms.pirl_jigsaw_transform import (  # noqa: E402
    ImgPilToPirlJigsaw)
from vissl_pirl_plugin.hooks.memory_bank_hook import MemoryBankUpdateHook  # noqa: E402
from vissl_pirl_plugin.hooks.model_compile_hook import (  # noqa: E402
    ModelCompileHook,
    compiled_module,
)
from vissl_pirl_plugin.hooks.non_finite_guard_hook import NonFiniteGuardHook  # noqa: E402
from vissl_pirl_plugin.utils.host_reads import HOST_RESIDENT_READS, HostReadDetector  # noqa: E402
from vissl_pirl_plugin.losses.pirl_loss import PIRLLoss  # noqa: E402
from vissl_pirl_plugin.utils.launch_counter import LaunchCounter  # noqa: E402

AMP_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}
NO_CHECKPOINT_STEPS = {"CHECKPOINT": {"CHECKPOINT_ITER_FREQUENCY": 0, "CHECKPOINT_FREQUENCY": 100}}
AUTOCAST_ENV = "PIRL_GPU_CHECK_AUTOCAST"


class HostSyncError(RuntimeError):
    """A host read in the step, found on the CPU (what CUDA's sync check raises there)."""


@contextlib.contextmanager
def no_host_sync(device: torch.device) -> Iterator[None]:
    """Makes a host-device synchronisation inside raise: on CUDA at once
    (``set_sync_debug_mode("error")``), on the CPU at the end of the block (``HostReadDetector``,
    reads of host memory allowed)."""
    if device.type != "cuda":
        with HostReadDetector(allowed=HOST_RESIDENT_READS) as detector:
            yield
        if detector.reads:
            raise HostSyncError(f"host read: {detector.reads[0]}"
                                + (f" (and {len(detector.reads) - 1} more)"
                                   if len(detector.reads) > 1 else ""))
        return
    torch.cuda.set_sync_debug_mode("error")
    try:
        yield
    finally:
        torch.cuda.set_sync_debug_mode("default")


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_gib(device: torch.device) -> Optional[float]:
    return torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None


def hooked_step(loss: PIRLLoss, guard: NonFiniteGuardHook, bank_hook: MemoryBankUpdateHook,
                task: SimpleNamespace) -> None:
    """The plugin's per-step path, in the order of VISSL's train step: the guard's checks, the
    loss forward and backward, the bank update, the checkpoint-step hooks."""
    guard.on_forward(task)
    task.last_batch.loss = loss(task.last_batch.model_output, task.last_batch.target)
    guard.on_loss_and_meter(task)
    task.last_batch.loss.backward()
    bank_hook.on_update(task)
    guard.on_step(task)
    bank_hook.on_step(task)


def check_loss_and_bank(device: torch.device, num_samples: int = IMAGENET, batch: int = BATCH,
                        num_negatives: int = NEGATIVES, steps: int = 10) -> dict:
    """Loss, backward, the per-step hooks and the bank update, ``steps`` times under
    ``no_host_sync`` after one warm-up step (which estimates Z, once per run)."""
    torch.manual_seed(0)
    loss = PIRLLoss(num_train_samples=num_samples, num_negatives=num_negatives).to(device)
    guard, bank_hook = NonFiniteGuardHook(), MemoryBankUpdateHook()

    def step(iteration: int) -> None:
        g = torch.randn(batch, DIM, device=device, requires_grad=True)
        f = torch.randn(batch, DIM, device=device, requires_grad=True)
        target = torch.randint(0, num_samples, (batch,), device=device)
        hooked_step(loss, guard, bank_hook, SimpleNamespace(
            base_loss=loss, train=True, losses=[], iteration=iteration, phase_idx=0,
            train_phase_idx=0, num_train_phases=2, config=NO_CHECKPOINT_STEPS,
            last_batch=SimpleNamespace(model_output=[g, f], target=target, loss=None)))

    step(0)
    reset_peak_memory(device)
    result = {"bank_rows": num_samples, "batch": batch, "negatives": num_negatives,
              "steps": steps, "host_syncs": "none"}
    start = time.perf_counter()
    try:
        with no_host_sync(device):
            for iteration in range(1, steps + 1):
                step(iteration)
    except HostSyncError as error:  # found on the CPU, with its place
        result["host_syncs"] = str(error)
        return result
    except RuntimeError as error:  # what set_sync_debug_mode("error") raises
        result["host_syncs"] = f"{str(error).splitlines()[0]} at {sync_site(error)}"
        return result
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    result["ms_per_step"] = 1000 * (time.perf_counter() - start) / steps
    result["peak_gib"] = peak_memory_gib(device)
    return result


def sync_site(error: BaseException) -> str:
    """The innermost frame of the plugin in ``error``'s traceback, as file:line."""
    plugin = REPO / "vissl_pirl_plugin"
    frames = [frame for frame in traceback.extract_tb(error.__traceback__)
              if Path(frame.filename).is_relative_to(plugin)]
    return f"{Path(frames[-1].filename).relative_to(REPO)}:{frames[-1].lineno}" if frames \
        else "(outside the plugin)"


def train_throughput(device: torch.device, batch: int = BATCH, repeats: int = 10,
                     dataset_size: int = IMAGENET, num_negatives: int = NEGATIVES,
                     image_size: int = 224, amps: Sequence[Optional[str]] = (None,)
                     ) -> Dict[str, dict]:
    """Images/s and peak memory of one training step, VISSL's built-in PIRL against ours, for
    each of ``amps`` (None: fp32). VISSL's loss, with its sampling table, is built once."""
    photos = (source_photographs() * (batch // 17 + 1))[:batch]
    overrides = [*STEP_OVERRIDES, f"config.DATA.TRAIN.BATCHSIZE_PER_REPLICA={batch}",
                 f"config.DATA.TRAIN.TRANSFORMS.0.image_crop_size={image_size}"]
    built = time.perf_counter()
    shared_vissl_loss = vissl_nce_loss(dataset_size, num_negatives, DIM)
    results: Dict[str, dict] = {"vissl_table_s": time.perf_counter() - built}
    for amp in amps:
        for name in ("vissl", "ours"):
            torch.manual_seed(0)
            run = make_train_step(name, photos, overrides, dataset_size, num_negatives,
                                  image_size, device, augment_each_step=False,
                                  amp_dtype=AMP_DTYPES[amp] if amp else None,
                                  vissl_loss=shared_vissl_loss)
            reset_peak_memory(device)
            seconds = median_seconds(run, repeats)
            results[f"{name}_{amp or 'fp32'}"] = {"images_per_s": batch / seconds,
                                                  "peak_gib": peak_memory_gib(device)}
            del run
            if device.type == "cuda":
                torch.cuda.empty_cache()
    return results


PIL_OPS = {  # batched op -> (PIL op, parameters of 4 crops)
    "brightness": (lambda image, f: ImageEnhance.Brightness(image).enhance(f), [0.6, 1.0, 1.2, 1.4]),
    "contrast": (lambda image, f: ImageEnhance.Contrast(image).enhance(f), [0.6, 1.0, 1.2, 1.4]),
    "saturation": (lambda image, f: ImageEnhance.Color(image).enhance(f), [0.6, 0.0, 1.2, 1.4]),
    "hue": (lambda image, shift: torchvision.transforms.functional.adjust_hue(image, shift),
            [-0.2, 0.05, 0.1, 0.2]),
    "posterize": (ImageOps.posterize, [4, 5, 6, 8]),
    "sharpness": (lambda image, f: ImageEnhance.Sharpness(image).enhance(f), [0.1, 0.5, 1.0, 1.9]),
    "solarize": (ImageOps.solarize, [0, 100, 200, 256]),
}


def device_against_pil(device: torch.device, images: List[Image.Image], size: int = 224,
                       regions_per_image: int = 8) -> dict:
    """The largest differences to PIL of the batched ops on ``device``, and the resized crops'
    mean, 99th-percentile and largest difference, on ``images`` (the issue's bars: 1 / 3)."""
    generator = torch.Generator(device=device).manual_seed(0)
    canvas = torch.stack([torch.from_numpy(np.asarray(image).copy()) for image in images])
    sizes = torch.tensor([[image.height, image.width] for image in images] * regions_per_image)
    pixels = canvas.repeat(regions_per_image, 1, 1, 1).permute(0, 3, 1, 2).to(device)
    regions = random_regions(sizes.to(device), (0.08, 1.0), (3 / 4, 4 / 3), generator)
    resized = resize_regions(pixels, regions, size).permute(0, 2, 3, 1).cpu().numpy()
    differences = []
    for index, (top, left, height, width) in enumerate(regions.tolist()):
        image = images[index % len(images)]
        expected = np.asarray(image.crop((left, top, left + width, top + height)).resize(
            (size, size), Image.BILINEAR))
        differences.append(np.abs(resized[index].astype(int) - expected.astype(int)).reshape(-1))
    differences = np.concatenate(differences)
    result = {"resize_mean": float(differences.mean()),
              "resize_p99": float(np.percentile(differences, 99)),
              "resize_max": int(differences.max())}
    crops = [image.crop((0, 0, 96, 96)) for image in images[:4]]
    batch = torch.stack([torch.from_numpy(np.asarray(crop).copy()) for crop in crops])
    batch = batch.permute(0, 3, 1, 2).to(device)
    for name, (pil_op, params) in PIL_OPS.items():
        ours = getattr(batched_photometric, name)(batch, torch.tensor(params, device=device))
        expected = np.stack([np.asarray(pil_op(crop, value)) for crop, value in zip(crops, params)])
        result[f"{name}_max"] = int(np.abs(ours.permute(0, 2, 3, 1).cpu().numpy().astype(int)
                                           - expected.astype(int)).max())
    return result


class JpegSamples(torch.utils.data.Dataset):
    """VISSL-style samples of JPEG files, decoded and transformed in the loader workers."""

    def __init__(self, paths: List[Path], transform) -> None:
        self.paths, self.transform = paths, transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict:
        return self.transform({"data": [load_rgb_image(str(self.paths[index]))],
                               "label": [index], "data_valid": [1], "data_idx": [index]})


def feed_warm_up(workers: int) -> int:
    """Steps before timing: cuDNN's first two, and the ``workers`` batches (one each, prefetch
    1) the workers make while the model is built, so that the timed steps wait on the feed."""
    return 2 + workers


def feed_throughput(device: torch.device, side: str, paths: List[Path], batch: int,
                    workers: int, image_size: int, amp: Optional[str]) -> dict:
    """End-to-end samples/s of ``side`` ("vissl", "ours", "ours_on_device") fed by ``workers``
    loader workers: every batch decoded, augmented, collated, copied, then one training step of
    ``run_benchmarks.train_once``; with ``on_device`` also the augmentation's share of the step."""
    overrides = [*STEP_OVERRIDES, f"config.DATA.TRAIN.BATCHSIZE_PER_REPLICA={batch}",
                 f"config.DATA.TRAIN.TRANSFORMS.0.image_crop_size={image_size}"]
    name = "vissl" if side == "vissl" else "ours"
    parts = training_parts(name, overrides, len(paths), min(NEGATIVES, len(paths) // 2),
                           image_size, device)
    augmentation = None
    if side == "ours_on_device":
        transform = ImgPilToPirlJigsaw(on_device=True, image_crop_size=image_size)
        parts.transform = lambda sample: dict(sample, data=[transform(sample["data"][0])])
        augmentation = DevicePirlAugmentation(transform)
    loader = torch.utils.data.DataLoader(
        JpegSamples(paths, parts.transform), batch_size=batch, num_workers=workers,
        collate_fn=parts.collate, pin_memory=device.type == "cuda", drop_last=True,
        multiprocessing_context="fork" if workers else None,
        prefetch_factor=1 if workers else None)
    generator = torch.Generator(device=device).manual_seed(0)
    warm_up = feed_warm_up(workers)
    augment_seconds, steps, start = 0.0, 0, None
    for data in loader:
        if steps == warm_up:  # the batches the workers made before the first step, consumed
            start, augment_seconds = time.perf_counter(), 0.0
        if augmentation is None:
            inputs = {key: data[key][0].to(device, non_blocking=True)
                      for key in ("patches", "images")}
        else:
            began = time.perf_counter()
            inputs = augmentation(data["pixels"][0].to(device, non_blocking=True),
                                  data["pixel_sizes"][0].to(device, non_blocking=True), generator)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            augment_seconds += time.perf_counter() - began
        train_once(parts, inputs, data["label"][0].to(device), AMP_DTYPES.get(amp))
        steps += 1
    timed = (steps - warm_up) * batch
    seconds = time.perf_counter() - start
    result = {"samples_per_s": timed / seconds}
    if augmentation is not None:
        result["augmentation_share_of_step"] = augment_seconds / seconds
    return result


def check_device_augmentation(device: torch.device, batch: int = BATCH, workers: int = 8,
                              steps: int = 40, image_size: int = 224,
                              amp: Optional[str] = "fp16") -> dict:
    """Issue 19's numbers on ``device``: against PIL, host syncs, time and share, feeding."""
    files = imagenet_size_jpegs()
    images = [load_rgb_image(str(path)) for path in files]
    result = device_against_pil(device, images)
    transform = ImgPilToPirlJigsaw(on_device=True, image_crop_size=image_size)
    canvas = torch.stack([transform(images[i % len(images)]).permute(1, 2, 0)
                          for i in range(batch)]).to(device)
    sizes = torch.tensor([list(canvas.shape[1:3])] * batch, device=device)
    augmentation = DevicePirlAugmentation(transform)
    generator = torch.Generator(device=device).manual_seed(0)
    augmentation(canvas, sizes, generator)  # warm-up: tables and constants reach the device
    result["host_syncs"] = "none"
    try:
        with no_host_sync(device):
            augmentation(canvas, sizes, generator)
    except HostSyncError as error:
        result["host_syncs"] = str(error)
    except RuntimeError as error:  # what set_sync_debug_mode("error") raises
        result["host_syncs"] = f"{str(error).splitlines()[0]} at {sync_site(error)}"

    def augment() -> None:
        augmentation(canvas, sizes, generator)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    result["augmentation_ms_batch"] = 1000 * median_seconds(augment, 5)
    paths = [files[i % len(files)] for i in range(batch * (steps + feed_warm_up(workers)))]
    for side in ("vissl", "ours", "ours_on_device"):
        result[side] = feed_throughput(device, side, paths, batch, workers, image_size, amp)
        if device.type == "cuda":
            torch.cuda.empty_cache()
    result["batch"], result["loader_workers"] = batch, workers
    if result["host_syncs"] != "none":
        raise HostSyncError(f"the device augmentation made a host sync: {result['host_syncs']}")
    return result


# the kit's configurations of the model, in the order measured: eager, or MODEL.COMPILE.MODE
# (CUDA graphs first: the least needed last, if the stage's time runs out)
LAUNCH_MODES = {"eager": None, "cudagraphs": "reduce-overhead", "compiled": "default"}


class SegmentClock:
    """The host's time to launch a piece of a training step and the device's time to run it.

    On CUDA a sleep kernel holds the GPU while the host launches the piece, so that the host
    never waits for the GPU, and the GPU then runs the piece's kernels back to back: the CUDA
    events around them give the GPU's own time. Whether the GPU was still asleep when the host
    was done is checked: if not (a sleep too short, or more launches than a stream queues, about
    1,000, so a step is timed piece by piece), the host may have waited, the piece is reported,
    and the sleep doubles. On the CPU both times are the wall time."""

    def __init__(self, device: torch.device, sleep_ms: float = 50.0) -> None:
        self.device, self.cycles = device, 0
        if device.type == "cuda":
            probe = 10_000_000
            begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            begin.record()
            torch.cuda._sleep(probe)
            end.record()
            end.synchronize()
            self.cycles = int(probe * sleep_ms / max(begin.elapsed_time(end), 1e-3))

    def time(self, piece: Callable[[], object]) -> tuple:
        """``(piece's result, host seconds, device seconds, whether the host never waited)``."""
        if self.device.type != "cuda":
            start = time.perf_counter()
            result = piece()
            seconds = time.perf_counter() - start
            return result, seconds, seconds, True
        torch.cuda.synchronize(self.device)
        torch.cuda._sleep(self.cycles)
        begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        begin.record()
        start = time.perf_counter()
        result = piece()
        host = time.perf_counter() - start
        end.record()
        held = not begin.query()  # the GPU had not started the piece: the host never waited
        end.synchronize()
        if not held:
            self.cycles *= 2
        return result, host, begin.elapsed_time(end) / 1000, held


def launch_bound_variant(parts: SimpleNamespace, feed: Callable[[], Dict[str, torch.Tensor]],
                         targets: torch.Tensor, amp: Optional[str], clock: SegmentClock,
                         repeats: int, steps: int, count_launches: bool = True) -> dict:
    """One configuration's launches per step (``LaunchCounter``, unless not
    ``count_launches``), host and device time per step (the sums of its pieces: inputs, forward
    and loss, backward, update; medians of ``repeats``), and samples/s of ``steps`` steps back
    to back, the loss read on the host every step as VISSL's step does."""
    amp_dtype = AMP_DTYPES.get(amp)

    def step() -> torch.Tensor:
        torch.compiler.cudagraph_mark_step_begin()  # CUDA graphs: the last step's outputs are done
        output, value = forward_and_loss(parts, feed(), targets, amp_dtype)
        backward(parts, value)
        update(parts, output, targets)
        return value

    started = time.perf_counter()
    for _ in range(3):  # cuDNN's choices, Z's estimate, the momentum buffers, the compilation
        step()
    if parts.device.type == "cuda":
        torch.cuda.synchronize(parts.device)
    result = {"warm_up_s": time.perf_counter() - started, "launches": None}
    if count_launches:
        try:
            with LaunchCounter() as launches:
                step()
            result["launches"] = launches.total
        except Exception as error:  # noqa: BLE001 - the times are still worth measuring
            result["launches"] = f"not counted: {type(error).__name__}: {error}"[:200]
    host, gpu, waited = [], [], set()
    for _ in range(repeats):
        torch.compiler.cudagraph_mark_step_begin()
        inputs, *times = clock.time(feed)
        pieces = {"inputs": times}
        (output, value), *pieces["forward"] = clock.time(
            lambda: forward_and_loss(parts, inputs, targets, amp_dtype))
        _, *pieces["backward"] = clock.time(lambda: backward(parts, value))
        _, *pieces["update"] = clock.time(lambda: update(parts, output, targets))
        host.append(sum(host_s for host_s, _, _ in pieces.values()))
        gpu.append(sum(gpu_s for _, gpu_s, _ in pieces.values()))
        waited |= {name for name, (_, _, held) in pieces.items() if not held}
    result["host_ms"] = 1000 * float(np.median(host))
    result["gpu_ms"] = 1000 * float(np.median(gpu))
    # pieces whose host time may include waiting for the GPU (an upper bound then)
    result["host_waited_in"] = sorted(waited)
    result["bound"] = "host-bound" if result["host_ms"] > result["gpu_ms"] else "GPU-bound"
    start = time.perf_counter()
    for _ in range(steps):
        step().item()
    result["samples_per_s"] = steps * len(targets) / (time.perf_counter() - start)
    return result


def check_launch_bound(device: torch.device, out: Optional[Path] = None, batch: int = BATCH,
                       image_size: int = 224, dataset_size: int = IMAGENET,
                       num_negatives: int = NEGATIVES, amp: Optional[str] = "fp16",
                       overrides: Sequence[str] = STEP_OVERRIDES, repeats: int = 3,
                       steps: int = 20, modes: Sequence[str] = tuple(LAUNCH_MODES)) -> dict:
    """Issue 26: is the step host-bound or GPU-bound? The paper's step (ResNet-50, batch 32,
    224-px images and 288 patches, 32000 negatives, the ImageNet-size bank) with the loader-side
    views copied from pinned memory or with ``augmentation=on_device`` (the uint8 canvas of
    ImageNet-size JPEGs, padded to ``max_image_side``, copied and augmented), eager and with
    ``MODEL.COMPILE`` in its modes ``default`` and ``reduce-overhead`` (CUDA graphs; its
    launches are not counted: ``LaunchCounter`` does not model a graph's replay), as ``modes``
    asks; each written to ``out`` as soon as it is measured (a stage killed while compiling
    keeps the eager results)."""
    transform = ImgPilToPirlJigsaw(on_device=True, image_crop_size=image_size)
    files = imagenet_size_jpegs()
    samples = [{"data": [transform(load_rgb_image(str(files[i % len(files)])))], "label": [i],
                "data_valid": [1], "data_idx": [i]} for i in range(batch)]
    canvas = get_collator("pirl_collator", {"canvas_side": transform.max_image_side})(samples)
    pinned = device.type == "cuda"
    pixels, sizes = (canvas[key][0].pin_memory() if pinned else canvas[key][0]
                     for key in ("pixels", "pixel_sizes"))
    augmentation = DevicePirlAugmentation(transform)
    generator = torch.Generator(device=device).manual_seed(0)
    views = {key: view.cpu() for key, view in augmentation(
        pixels.to(device), sizes.to(device), generator).items()}
    views = {key: view.pin_memory() if pinned else view for key, view in views.items()}
    feeds = {
        "loader": lambda: {key: view.to(device, non_blocking=True) for key, view in views.items()},
        "on_device": lambda: augmentation(pixels.to(device, non_blocking=True),
                                          sizes.to(device, non_blocking=True), generator)}
    torch.manual_seed(0)
    parts = training_parts("ours", [*overrides, f"config.DATA.TRAIN.BATCHSIZE_PER_REPLICA={batch}",
                                    f"config.DATA.TRAIN.TRANSFORMS.0.image_crop_size={image_size}"],
                           dataset_size, num_negatives, image_size, device)
    targets = torch.randperm(dataset_size, device=device)[:batch]
    clock = SegmentClock(device)
    result: dict = {"batch": batch, "amp": amp or "off"}
    for mode in modes:
        compiled_module(parts.model).__dict__.pop("forward", None)  # the model's own forward
        if LAUNCH_MODES[mode] is not None:  # MODEL.COMPILE's hook: one compilation, both feeds
            ModelCompileHook(LAUNCH_MODES[mode]).on_start(SimpleNamespace(base_model=parts.model))
        for feed in ("loader", "on_device"):
            name = f"{feed}_{mode}"
            try:
                result[name] = launch_bound_variant(parts, feeds[feed], targets, amp, clock,
                                                    repeats, steps, mode != "cudagraphs")
            except Exception as error:  # noqa: BLE001 - the other configurations still run
                result[name] = {"error": f"{type(error).__name__}: {error}".splitlines()[0]}
            result["lines"] = launch_bound_lines(result)
            if out is not None:
                out.write_text(json.dumps({"launch_bound": result}, indent=2, default=str))
    return result


def launch_bound_lines(result: dict) -> List[str]:
    """The summary's lines: per configuration the verdict, its times, samples/s and launches."""
    lines = [f"per step, batch {result['batch']}, autocast {result['amp']}: host's launch time "
             "vs the GPU's time (CUDA events)"]
    for name, row in result.items():
        if not isinstance(row, dict):
            continue
        feed, mode = name.rsplit("_", 1)
        label = f"{'loader-side' if feed == 'loader' else feed}, {mode}"
        if "error" in row:
            lines.append(f"{label:22s} {row['error']}")
            continue
        rate = row["samples_per_s"]
        rate = f"{rate:,.0f}" if rate >= 10 else f"{rate:.2f}"  # the CPU's dry run: below 1
        launches = row["launches"]  # None with CUDA graphs: a replay is not modelled
        launches = f"{launches:,} launches" if isinstance(launches, int) else "launches not counted"
        waited = (f"; the host may have waited in {', '.join(row['host_waited_in'])}"
                  if row["host_waited_in"] else "")
        lines.append(f"{label:22s} {row['bound']:10s} host {row['host_ms']:6.1f} ms, GPU "
                     f"{row['gpu_ms']:6.1f} ms, {rate} samples/s, {launches} "
                     f"(warm-up {row['warm_up_s']:.0f} s{waited})")
    return lines


def write_photo_crops(folder: Path, count: int, size: int = 256) -> Path:
    """``count`` JPEGs cut at random from scikit-image's photographs, in two class folders."""
    rng = np.random.default_rng(0)
    photos = source_photographs()
    for index in range(count):
        photo = photos[index % len(photos)]
        side = int(rng.integers(min(photo.size) // 2, min(photo.size) + 1))
        left = int(rng.integers(0, photo.size[0] - side + 1))
        top = int(rng.integers(0, photo.size[1] - side + 1))
        crop = photo.crop((left, top, left + side, top + side)).resize((size, size))
        target = folder / f"class{index % 2}"
        target.mkdir(parents=True, exist_ok=True)
        crop.save(target / f"{index:05d}.jpg", quality=90)
    return folder


def device_overrides(device: torch.device) -> List[str]:
    gpu = device.type == "cuda"
    return [f"config.MACHINE.DEVICE={'gpu' if gpu else 'cpu'}",
            f"config.DISTRIBUTED.BACKEND={'nccl' if gpu else 'gloo'}",
            "config.DISTRIBUTED.NUM_NODES=1", "config.DISTRIBUTED.NUM_PROC_PER_NODE=1"]


def launch(args: List[str], cwd: Path, env: Optional[dict] = None) -> float:
    """Runs ``args`` (a launcher script and its arguments) with this Python; returns its wall
    time (s), raises on failure with the end of its output."""
    start = time.perf_counter()
    result = subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True,
                            env=dict(os.environ, PYTHONUNBUFFERED="1", **(env or {})))
    if result.returncode != 0:
        raise RuntimeError(f"launch failed ({result.returncode}):\n"
                           + (result.stdout + result.stderr)[-3000:])
    return time.perf_counter() - start


def rewind(checkpoints: Path, phase: int) -> None:
    """Leaves ``checkpoints`` as a run stopped right after epoch ``phase``'s checkpoint."""
    for final in checkpoints.glob("model_final_checkpoint_phase*.torch"):
        final.unlink()
    (checkpoints / "checkpoint.torch").unlink()
    (checkpoints / "checkpoint.torch").symlink_to(checkpoints / f"model_phase{phase}.torch")


def train_and_resume(device: torch.device, workdir: Path, amp: Optional[str] = "fp16",
                     num_images: int = 320, batch: int = BATCH, epochs: int = 3,
                     workers: int = 8, image_size: int = 224) -> dict:
    """The paper config for ``epochs + 1`` epochs; then the last epoch again, resumed from the
    checkpoint of epoch ``epochs - 1`` (its bank saved from the device)."""
    images = workdir / "images"
    if not images.is_dir():
        write_photo_crops(images, num_images)
    checkpoints = workdir / f"train_{amp or 'fp32'}"
    if checkpoints.exists():  # VISSL would auto-resume from it and train nothing
        raise FileExistsError(f"{checkpoints} exists: the kit trains in a fresh work folder.")
    common = ["config=pretrain/pirl/pirl_jigsaw_4node_resnet50", *device_overrides(device),
              f"config.DATA.TRAIN.DATA_PATHS=[{images}]",
              f"config.DATA.TRAIN.BATCHSIZE_PER_REPLICA={batch}",
              f"config.DATA.TRAIN.TRANSFORMS.0.image_crop_size={image_size}",
              f"config.LOSS.pirl_loss.num_negatives={num_images // 2}",
              f"config.DATA.NUM_DATALOADER_WORKERS={workers}",
              f"config.CHECKPOINT.DIR={checkpoints}", "config.CHECKPOINT.CHECKPOINT_FREQUENCY=1",
              f"config.OPTIMIZER.num_epochs={epochs + 1}",
              f"config.MODEL.AMP_PARAMS.USE_AMP={amp is not None}",
              "config.MODEL.AMP_PARAMS.AMP_TYPE=pytorch", "config.LOG_FREQUENCY=1"]
    env = {AUTOCAST_ENV: amp} if amp else {}
    kit = [str(Path(__file__).resolve()), "--launch"]
    first, resumed = checkpoints / "first", checkpoints / "resumed"
    for folder in (first, resumed):
        folder.mkdir(parents=True, exist_ok=True)
    seconds = launch([*kit, str(first), *common], workdir, env)
    rewind(checkpoints, epochs - 1)
    resume_seconds = launch([*kit, str(resumed), *common], workdir, env)
    # the kit's own checkpoint, written above (VISSL's checkpoints hold more than tensors)
    saved = torch.load(checkpoints / f"model_phase{epochs - 1}.torch", map_location="cpu",
                       weights_only=False)["loss"]["memory_bank.embeddings"]
    dumps = {f"{run}_{when}": torch.load(run_dir / f"state_{when}_rank0.pt", map_location="cpu")
             for run, run_dir in (("first", first), ("resumed", resumed))
             for when in ("start", "end")}
    losses = [json.loads(line)["loss"] for line in
              (checkpoints / "stdout.json").read_text().splitlines() if '"loss"' in line]
    steps, start, end = (dumps["first_end"]["iteration"], dumps["resumed_start"],
                         dumps["resumed_end"])
    return {"amp": amp or "off", "steps": steps,
            "resumed_steps": end["iteration"] - start["iteration"],
            "images_per_s": steps * batch / seconds, "resume_launch_s": resume_seconds,
            "bank_restored": torch.equal(saved, start["bank"]),
            "retraced": torch.equal(dumps["first_end"]["bank"], end["bank"]),
            "losses_finite": bool(np.isfinite(losses).all()) and len(losses) > 0,
            "first_loss": losses[0] if losses else None,
            "last_loss": losses[-1] if losses else None,
            "checkpoint": str(checkpoints / f"model_final_checkpoint_phase{epochs}.torch")}


def linear_iteration(device: torch.device, workdir: Path, checkpoint: str, batch: int = 4) -> dict:
    """One training iteration (and one test batch) of the ImageNet linear benchmark."""
    images = workdir / "images"
    if not images.is_dir():
        write_photo_crops(images, 2 * batch)
    data = [f"config.DATA.{split}.{key}" for split in ("TRAIN", "TEST")
            for key in ("DATA_PATHS", "LABEL_PATHS", "DATA_LIMIT", "BATCHSIZE_PER_REPLICA")]
    values = [f"[{images}]", f"[{images}]", str(batch), str(batch)] * 2
    seconds = launch([str(REPO / "tools" / "run_distributed_engines.py"),
                      "config=benchmark/linear_image_classification/imagenet1k/"
                      "eval_resnet_pirl_in1k_linear", *device_overrides(device),
                      *(f"{key}={value}" for key, value in zip(data, values)),
                      f"config.MODEL.WEIGHTS_INIT.PARAMS_FILE={checkpoint}",
                      "config.OPTIMIZER.num_epochs=1", "config.DATA.NUM_DATALOADER_WORKERS=0",
                      # one epoch: a constant LR (the paper's steps need more epochs than that)
                      *(f"config.OPTIMIZER.param_schedulers.{lr}.{key}={value}"
                        for lr in ("lr", "lr_head")
                        for key, value in (("name", "constant"), ("value", 0.01))),
                      "config.METERS.accuracy_list_meter.topk_values=[1]",
                      f"config.CHECKPOINT.DIR={workdir / 'linear'}"], workdir)
    # the kit's own checkpoint, just written (VISSL's checkpoints hold more than tensors)
    final = torch.load(workdir / "linear" / "model_final_checkpoint_phase0.torch",
                       map_location="cpu", weights_only=False)
    return {"iterations": final["iteration"], "launch_s": seconds}


def run_check(name: str, check: Callable[[], dict], results: dict) -> None:
    """Runs one check; a failure is recorded with its message and the others still run."""
    print(f"== {name}", flush=True)
    try:
        results[name] = {"ok": True, **check()}
    except Exception as error:  # noqa: BLE001 - the kit reports every failure and goes on
        results[name] = {"ok": False, "error": f"{type(error).__name__}: {error}"[-2000:]}
    print(json.dumps(results[name], indent=1, default=str), flush=True)


def small_sizes(device: torch.device) -> Dict[str, dict]:
    """Each check's arguments at small sizes (the CPU), or none (the paper's, on CUDA)."""
    if device.type == "cuda":
        return {}
    return {"loss_and_bank": dict(num_samples=4096, num_negatives=256, batch=4),
            "train_and_resume": dict(num_images=8, batch=2, epochs=1, workers=0, image_size=64),
            "train_step": dict(batch=2, repeats=1, dataset_size=64, num_negatives=8,
                               image_size=64),
            "device_augmentation": dict(batch=2, workers=0, steps=1, image_size=64, amp=None),
            # eager only: a compilation takes minutes on a CPU
            "launch_bound": dict(batch=2, image_size=64, dataset_size=64, num_negatives=8,
                                 amp=None, overrides=(), repeats=1, steps=2,
                                 modes=("eager",))}


def check_names(device: torch.device) -> List[str]:
    """The checks in the order the kit runs them (AMP on CUDA only)."""
    training = [f"train_and_resume_{amp}" for amp in (("fp16", "bf16") if device.type == "cuda"
                                                      else ("fp32",))]
    return ["loss_and_bank", *training, "linear_iteration", "launch_bound", "train_step",
            "device_augmentation"]


def run_check_named(name: str, device: torch.device, workdir: Path,
                    checkpoint: Optional[str] = None, out: Optional[Path] = None) -> dict:
    """Runs check ``name`` (see ``check_names``) and returns its measurements; a check that
    measures in rounds writes each round to ``out``."""
    sizes = small_sizes(device)
    if name == "loss_and_bank":
        result = check_loss_and_bank(device, **sizes.get(name, {}))
        if result["host_syncs"] != "none":  # the check fails: the step must make none
            raise HostSyncError(f"the step made a host sync: {result['host_syncs']}")
        return result
    if name.startswith("train_and_resume_"):
        amp = name.rsplit("_", 1)[1]
        return train_and_resume(device, workdir, None if amp == "fp32" else amp,
                                **sizes.get("train_and_resume", {}))
    if name == "linear_iteration":
        if checkpoint is None:
            raise ValueError("linear_iteration needs --checkpoint (a train_and_resume result).")
        return linear_iteration(device, workdir, checkpoint)
    if name == "train_step":
        amps = (None, "fp16") if device.type == "cuda" else (None,)
        return train_throughput(device, amps=amps, **sizes.get(name, {}))
    if name == "device_augmentation":
        return check_device_augmentation(device, **sizes.get(name, {}))
    if name == "launch_bound":
        return check_launch_bound(device, out, **sizes.get(name, {}))
    raise ValueError(f"Unknown check {name!r}: choose from {check_names(device)}.")


def run_all(device: torch.device, workdir: Path, names: Optional[List[str]] = None,
            checkpoint: Optional[str] = None, out: Optional[Path] = None) -> dict:
    """The checks ``names`` (default all) on ``device``, in this process; the linear iteration
    takes the first trained checkpoint unless ``checkpoint`` is given. A check measuring in
    rounds writes its rounds to ``out`` as it goes."""
    results: Dict[str, dict] = {"device": torch.cuda.get_device_name(device)
                                if device.type == "cuda" else "cpu",
                                "torch": torch.__version__}
    for name in names or check_names(device):
        if name == "linear_iteration" and checkpoint is None:
            checkpoint = next((r["checkpoint"] for key, r in results.items()
                               if key.startswith("train_and_resume") and r.get("ok")), None)
            if checkpoint is None:
                results[name] = {"ok": False, "error": "skipped: no trained checkpoint"}
                continue
        run_check(name, lambda: run_check_named(name, device, workdir, checkpoint, out), results)
    return results


def print_table(results: dict) -> None:
    print(f"\nGPU check on {results['device']} (torch {results['torch']})")
    for name, row in results.items():
        if isinstance(row, dict):
            shown = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()
                     if k not in ("checkpoint", "error")}
            print(f"{name:26s} {'ok  ' if row['ok'] else 'FAIL'} {shown}"
                  + (f"\n{'':31s}{row['error'][:600]}" if not row["ok"] else ""))


def launch_with_autocast(argv: List[str]) -> None:
    """``--launch DUMP_DIR overrides...``: the instrumented launcher (state dumps), with VISSL's
    ``torch.cuda.amp.autocast()`` made to autocast to the dtype in ``PIRL_GPU_CHECK_AUTOCAST``."""
    dtype = AMP_DTYPES.get(os.environ.get(AUTOCAST_ENV, ""))
    if dtype is not None:
        autocast = torch.autocast
        torch.cuda.amp.autocast = lambda *args, **kwargs: autocast("cuda", dtype=dtype)
    import instrumented_launch

    sys.argv = [instrumented_launch.__file__, *argv]
    instrumented_launch.main()


def main() -> None:
    if sys.argv[1:2] == ["--launch"]:
        launch_with_autocast(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "gpu_check.json")
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    parser.add_argument("--workdir", type=Path, default=None,
                        help="an empty or new folder (default: a fresh temporary one)")
    parser.add_argument("--check", nargs="+", default=None,
                        help="run only these checks, in this order (default: all)")
    parser.add_argument("--checkpoint", default=None, help="for linear_iteration")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        print("SKIPPED: the GPU check kit needs a CUDA device and torch.cuda.is_available() is "
              "False here; `--device cpu` runs its checks at small sizes on the CPU.")
        return
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="vissl_pirl_gpu_check_"))
    if workdir.exists() and any(workdir.iterdir()):
        raise SystemExit(f"--workdir {workdir} is not empty: VISSL would resume what an earlier "
                         "run left there. Give a new folder (or none: a fresh temporary one).")
    workdir.mkdir(parents=True, exist_ok=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    results = run_all(torch.device(args.device), workdir, args.check, args.checkpoint, args.out)
    print_table(results)
    args.out.write_text(json.dumps(results, indent=2, default=str))
    print(f"\nJSON: {args.out}")
    if not all(row["ok"] for row in results.values() if isinstance(row, dict)):
        sys.exit(1)


if __name__ == "__main__":
    main()

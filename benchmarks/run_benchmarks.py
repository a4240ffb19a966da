"""vissl-pirl against VISSL's built-in PIRL, side by side in one process, on identical inputs.

    .venv/bin/python benchmarks/run_benchmarks.py [--out benchmarks/results.json] [--repeats 7]
        [--parts augmentation data_loader imagenet_size launches loss train_step]

The timings are each the median of ``--repeats`` timed runs after one warm-up, VISSL's and ours
taking turns run by run:

1. loss + memory-bank step (forward, backward, bank update) at the paper's setting: batch 32
   per GPU, N = 32000 negatives, 128-d, two loss terms, ImageNet's 1281167-entry bank. Ours
   with per-sample negatives (fp32 and fp16 bank) and shared negatives; VISSL's
   ``nce_loss_with_memory`` (per-sample; it has no shared option).
2. the augmentation at equal work, both sides running the authors' recipe (VISSL 0.1.6's PIRL
   chain ``VISSL_PIRL_TRANSFORMS``: ImgPilToPatchesAndImage, ColorJitter, ImgPilRandomPhotometric,
   RandomGrayscale, flip, ToTensor, Normalize, against ``ImgPilToPirlJigsaw``'s defaults), on the
   169 JPEG photographs of the demo dataset (``data/demo``, built by ``make install``):
   (a) the transform alone on decoded images and (b) decoding the JPEG files + the transform,
   images/s on one core (the process is pinned to one CPU, one thread); (c) VISSL's data loader
   end to end (``GenericSSLDataset`` with VISSL's ``disk_folder`` or ours, the transform, the
   collator: ``patch_and_image_collator`` or ``pirl_collator``), batch 32, with 0 and 2 workers.
3. the input users train on (``--parts imagenet_size``): the 17 photographs of ``SKIMAGE_PHOTOS``
   and scikit-learn's sample images, cut to 500 x 375 and saved as JPEG files of quality 90
   (``imagenet_size_jpegs``). Per core (pinned, one thread): decoding alone, and what a loader
   worker does per sample (decode + transform + its share of the collator, batches of 32) for
   VISSL's chain, ours on the CPU and ours with ``on_device`` (the workers decode and cap; the
   rest runs in the training process); the bytes per sample the workers hand over; and the
   time of ``DevicePirlAugmentation`` on a batch of 32 of them on this machine's CPU, all its
   threads (the device-side work the CPU path does in the workers).
4. the device augmentation's kernel launches per batch, compiled and eager, the compile's
   seconds and its host time in trivial torch operators (``--parts device_augmentation_launches``,
   ``device_augmentation_launches.py``).
5. one full training step of the CPU demo config at ResNet-50 sizes with 0 data-loader
   workers (``STEP_OVERRIDES``: ResNet-50, batch 16, 128-px images and 9 patches of 64 px,
   64 negatives): augmenting and collating 16 of those photographs, forward, loss, backward, SGD step, bank update. The plugin's transform,
   collator, heads and loss against VISSL's (its chain at the same sizes).
5. kernel launches per training step by part (``--parts launches``, ``step_launches.py``): the
   paper config through VISSL's trainer on one CPU process, the loader-side path and
   ``augmentation=on_device``, eager and with ``MODEL.COMPILE``; counts, not timings, apart
   from each run's first step (the compilation's cost).

Prints a table and writes the numbers as JSON. Timings depend on the machine; the ratios
are what docs/performance.md reports.
"""
import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Callable, Dict, List, Optional, Sequence

from PIL import Image

import numpy as np
import torch
import vissl_pirl_plugin  # noqa: F401  (first: its VISSL compatibility patches)
from classy_vision.optim import build_optimizer
from vissl.config import AttrDict
from vissl.data import DATA_SOURCES_WITH_SUBSET_SUPPORT, DATASET_SOURCE_MAP, build_dataloader
from vissl.data.collators import get_collator
from vissl.data.disk_dataset import DiskImageDataset
from vissl.data.ssl_dataset import GenericSSLDataset
from vissl.data.ssl_transforms import get_transform
from vissl.losses.nce_loss import NCELossWithMemory
from vissl.models import build_model

import step_launches
from vissl_pirl_plugin.data.robust_disk_dataset import load_rgb_image
from vissl_pirl_plugin.data.transforms.batched.pirl_augmentation import DevicePirlAugmentation
from vissl_pirl_plugin.data.transforms.pirl_jigsaw_transform import ImgPilToPirlJigsaw
from vissl_pirl_plugin.data.transforms.pirl_pair_transform import DEFAULT_MAX_IMAGE_SIDE
from vissl_pirl_plugin.engine.config_validation import prepare_data
from vissl_pirl_plugin.engine.launcher import compose_config
from vissl_pirl_plugin.losses.pirl_loss import PIRLLoss

import device_augmentation_launches  # noqa: E402 - benchmarks/ is the script's folder

IMAGENET = 1281167
DEMO_IMAGES = Path("data/demo/train")
BATCH, NEGATIVES, DIM = 32, 32000, 128
VISSL_PIRL_TRANSFORMS = [
    {"name": "ImgPilToPatchesAndImage", "crop_scale_image": [0.08, 1.0], "crop_size_image": 224,
     "crop_scale_patches": [0.6, 1.0], "crop_size_patches": 255, "num_patches": 9},
    {"name": "ColorJitter", "brightness": 0.4, "contrast": 0.4, "saturation": 0.4, "hue": 0.2},
    {"name": "ImgPilRandomPhotometric"},
    {"name": "RandomGrayscale", "p": 0.2},
    {"name": "RandomHorizontalFlip"},
    {"name": "ToTensor"},
    {"name": "Normalize", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
]

# scikit-image's bundled photographs (no synthetic or document images)
SKIMAGE_PHOTOS = ("astronaut", "brick", "camera", "cat", "coffee", "coins", "grass", "gravel",
                  "hubble_deep_field", "immunohistochemistry", "moon", "retina", "rocket",
                  "horse", "clock")
STEP_OVERRIDES = [
    "config.MODEL.TRUNK.NAME=resnet", "config.MODEL.TRUNK.RESNETS.DEPTH=50",
    "config.MODEL.HEAD.PARAMS=[[[pirl_jigsaw_head,{in_dim:2048,patch_dim:128,num_patches:9,"
    "out_dim:128}]],[[mlp,{dims:[2048,128],use_bn:false,use_relu:false}]]]",
    "config.DATA.TRAIN.BATCHSIZE_PER_REPLICA=16", "config.DATA.TRAIN.TRANSFORMS.0.image_crop_size=128",
    "config.DATA.TRAIN.TRANSFORMS.0.jigsaw_crop_size=255",
    "config.DATA.TRAIN.TRANSFORMS.0.patch_size=64", "config.LOSS.pirl_loss.num_negatives=64"]


def source_photographs() -> List[Image.Image]:
    """17 RGB photographs that scikit-image and scikit-learn install with them."""
    from skimage import data as skdata
    from sklearn.datasets import load_sample_images

    photos = [getattr(skdata, name)() for name in SKIMAGE_PHOTOS]
    photos += list(load_sample_images().images)
    return [Image.fromarray(np.asarray(photo)).convert("RGB") for photo in photos]


IMAGENET_SIZE = (500, 375)  # ImageNet's most common size (width, height)
IMAGENET_JPEGS = Path("/tmp/vissl_pirl_bench/imagenet_size")


def imagenet_size_jpegs(folder: Path = IMAGENET_JPEGS) -> List[Path]:
    """``source_photographs()`` scaled to cover 500 x 375, its centre cut out, saved as JPEG
    files of quality 90 (made once)."""
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for index, photo in enumerate(source_photographs()):
        path = folder / f"{index:02d}.jpg"
        if not path.exists():
            width, height = IMAGENET_SIZE
            scale = max(width / photo.width, height / photo.height)
            size = (max(width, round(photo.width * scale)), max(height, round(photo.height * scale)))
            photo = photo.resize(size, Image.BICUBIC)
            left, top = (size[0] - width) // 2, (size[1] - height) // 2
            photo.crop((left, top, left + width, top + height)).save(path, quality=90)
        files.append(path)
    return files


def collated_bytes(batch: dict) -> int:
    """Bytes of the tensors a collated batch carries from a worker to the training process."""
    return sum(tensor.numel() * tensor.element_size() for value in batch.values()
               for tensor in (value if isinstance(value, list) else [value])
               if isinstance(tensor, torch.Tensor))


def bench_imagenet_size(repeats: int, batch: int = 32) -> Dict[str, Dict[str, float]]:
    """Loader-side samples/s per core and bytes per sample on ImageNet-size JPEGs, VISSL's chain,
    ours on the CPU and ours with ``on_device``; the device-side augmentation's seconds for a
    batch of 32 on this CPU."""
    files = imagenet_size_jpegs()
    paths = [files[i % len(files)] for i in range(batch)]
    sides = {"vissl": (get_transform(VISSL_PIRL_TRANSFORMS), vissl_pil_loader,
                       get_collator("patch_and_image_collator", {})),
             "ours_cpu": (get_transform([{"name": "ImgPilToPirlJigsaw"}]), load_rgb_image,
                          get_collator("pirl_collator", {})),
             "ours_on_device": (get_transform([{"name": "ImgPilToPirlJigsaw", "on_device": True}]),
                                load_rgb_image,  # the canvas the launcher asks for
                                get_collator("pirl_collator",
                                             {"canvas_side": DEFAULT_MAX_IMAGE_SIDE}))}

    def loader_batch(transform, loader, collate) -> dict:
        return collate([transform({"data": [loader(path)], "label": [i], "data_valid": [1],
                                   "data_idx": [i]}) for i, path in enumerate(paths)])
    runs = {name: (lambda side=side: loader_batch(*side)) for name, side in sides.items()}
    runs["decode_only"] = lambda: [load_rgb_image(path) for path in paths]
    threads, cpus = torch.get_num_threads(), one_core()
    per_core = {name: batch / seconds
                for name, seconds in interleaved_median_seconds(runs, repeats).items()}
    os.sched_setaffinity(0, cpus)
    torch.set_num_threads(threads)
    canvas = loader_batch(*sides["ours_on_device"])
    augmentation = DevicePirlAugmentation(ImgPilToPirlJigsaw(on_device=True))
    generator = torch.Generator().manual_seed(0)
    device_seconds = median_seconds(lambda: augmentation(canvas["pixels"][0],
                                                         canvas["pixel_sizes"][0], generator),
                                    max(3, repeats // 2))
    return {"samples_per_second_per_core": per_core,
            "bytes_per_sample": {name: collated_bytes(loader_batch(*side)) / batch
                                 for name, side in sides.items()},
            "device_augmentation_batch_32": {"seconds": device_seconds, "cpu_threads": threads}}


def median_seconds(run: Callable[[], None], repeats: int) -> float:
    return interleaved_median_seconds({"run": run}, repeats)["run"]


def interleaved_median_seconds(runs: Dict[str, Callable[[], None]],
                               repeats: int) -> Dict[str, float]:
    """Median seconds of each run after one warm-up each, the runs taking turns (VISSL's, ours,
    VISSL's, ...), so that a machine whose speed drifts during the measurement slows both
    sides alike."""
    for run in runs.values():
        run()  # warm-up
    times: Dict[str, List[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(seconds) for name, seconds in times.items()}


def vissl_nce_loss(dataset_size: int, num_negatives: int, dim: int) -> NCELossWithMemory:
    return NCELossWithMemory(AttrDict({
        "ignore_index": -1, "norm_embedding": True, "temperature": 0.07,
        "loss_weights": [0.5, 0.5], "norm_constant": -1, "loss_type": "nce",
        "negative_sampling_params": {"num_negatives": num_negatives, "type": "random"},
        "memory_params": {"memory_size": -1, "embedding_dim": dim, "momentum": 0.5,
                          "norm_init": True, "update_mem_on_forward": False},
        "update_mem_with_emb_index": 1, "num_train_samples": dataset_size}))


def loss_step(loss, plugin: bool) -> Callable[[], None]:
    def run() -> None:
        g = torch.randn(BATCH, DIM, requires_grad=True)
        f = torch.randn(BATCH, DIM, requires_grad=True)
        indices = torch.randint(0, IMAGENET, (BATCH,))
        loss([g, f], indices).backward()
        if plugin:  # VISSL updates its memory inside the forward pass
            loss.memory_bank.update(*loss.memory_update_inputs([g, f], indices))
    return run


def bench_loss(repeats: int) -> Dict[str, float]:
    torch.manual_seed(0)
    runs = {"vissl_per_sample": loss_step(vissl_nce_loss(IMAGENET, NEGATIVES, DIM), plugin=False)}
    for name, kwargs in (("ours_per_sample", {}), ("ours_per_sample_fp16", {"bank_dtype": "float16"}),
                         ("ours_shared", {"negative_sampling": "shared"})):
        loss = PIRLLoss(num_train_samples=IMAGENET, num_negatives=NEGATIVES, **kwargs)
        runs[name] = loss_step(loss, plugin=True)
    return interleaved_median_seconds(runs, repeats)


def demo_jpegs() -> List[Path]:
    files = sorted(DEMO_IMAGES.glob("*/*.jpg"))
    if not files:
        raise SystemExit(f"No JPEG photographs under {DEMO_IMAGES}: build the demo dataset with "
                         "`make install` or `python -m vissl_pirl_plugin.tools.demo_data --out "
                         "data/demo`.")
    return files


def vissl_pil_loader(path: Path) -> Image.Image:
    """How VISSL's ``disk_folder`` decodes a file (torchvision's ``pil_loader``)."""
    with open(path, "rb") as handle:
        return Image.open(handle).convert("RGB")


def one_core() -> set:
    """Pins this process to one CPU and one thread; returns the CPUs it had."""
    cpus = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(cpus)})
    torch.set_num_threads(1)
    return cpus


def bench_augmentation(repeats: int) -> Dict[str, Dict[str, float]]:
    """(a) the transform alone on decoded photographs and (b) decode + transform, images/s on
    one core, for VISSL's chain and ours, both the authors' recipe."""
    threads, cpus = torch.get_num_threads(), one_core()
    files = demo_jpegs()
    decoded = [vissl_pil_loader(path) for path in files]
    sides = (("vissl", VISSL_PIRL_TRANSFORMS, vissl_pil_loader),
             ("ours", [{"name": "ImgPilToPirlJigsaw"}], load_rgb_image))
    runs = {}
    for name, chain, loader in sides:
        transform = get_transform(chain)

        def sample(index: int, image: Image.Image, transform=transform) -> None:
            transform({"data": [image], "label": [index], "data_valid": [1], "data_idx": [index]})
        runs[("transform", name)] = (
            lambda sample=sample: [sample(i, image) for i, image in enumerate(decoded)])
        runs[("decode_and_transform", name)] = (
            lambda sample=sample, loader=loader: [sample(i, loader(path))
                                                  for i, path in enumerate(files)])
    results: Dict[str, Dict[str, float]] = {"transform": {}, "decode_and_transform": {}}
    for (part, name), seconds in interleaved_median_seconds(runs, repeats).items():
        results[part][name] = len(files) / seconds
    os.sched_setaffinity(0, cpus)
    torch.set_num_threads(threads)
    return results


def bench_data_loader(repeats: int, workers: Sequence[int] = (0, 2)) -> Dict[str, float]:
    """(c) VISSL's data loader end to end over the demo dataset, images/s: VISSL's disk_folder,
    chain and collator against the plugin's, at ResNet-50 sizes, batch 32."""
    demo_jpegs()
    runs = {}
    for name in ("vissl", "ours"):
        _, cfg = compose_config(["config=pretrain/pirl/pirl_jigsaw_cpu_demo",
                                 "config.CHECKPOINT.DIR=/tmp/vissl_pirl_bench"])
        prepare_data(cfg)  # a folder needs no dataset catalog entry
        train = cfg.DATA.TRAIN
        train.DROP_LAST = False
        source_map = dict(DATASET_SOURCE_MAP)
        if name == "vissl":
            train.TRANSFORMS = VISSL_PIRL_TRANSFORMS
            train.COLLATE_FUNCTION, train.COLLATE_FUNCTION_PARAMS = "patch_and_image_collator", {}
            source_map["disk_folder"] = DiskImageDataset
        else:
            train.TRANSFORMS = [{"name": "ImgPilToPirlJigsaw"}]  # defaults: ResNet-50 sizes
        dataset = GenericSSLDataset(cfg, "TRAIN", source_map, DATA_SOURCES_WITH_SUBSET_SUPPORT)
        for count in workers:
            loader = build_dataloader(dataset, train, count, pin_memory=False,
                                      multi_processing_method="fork", device=torch.device("cpu"))
            runs[f"{name}_{count}_workers"] = lambda loader=loader: [None for _ in loader]
    size = len(dataset)
    return {name: size / seconds
            for name, seconds in interleaved_median_seconds(runs, max(3, repeats // 2)).items()}


VISSL_PIRL_HEADS = [
    [["mlp", {"dims": [2048, 128], "use_bn": False, "use_relu": False}],
     ["siamese_concat_view", {"num_towers": 9}], ["mlp", {"dims": [1152, 128]}]],
    [["mlp", {"dims": [2048, 128]}]]]


def training_parts(name: str, overrides: List[str], dataset_size: int, num_negatives: int,
                   image_size: int, device: torch.device = torch.device("cpu"),
                   vissl_loss: Optional[NCELossWithMemory] = None) -> SimpleNamespace:
    """The model, loss, optimizer, transform and collator of ``name`` ("ours": the plugin's
    transform, collator, heads and loss; "vissl": VISSL's built-in PIRL chain, heads and
    ``nce_loss_with_memory``) with the CPU demo config and ``overrides``. ``vissl_loss`` reuses a
    VISSL loss already built for these sizes (its sampling table takes a minute at ImageNet
    size)."""
    _, cfg = compose_config(["config=pretrain/pirl/pirl_jigsaw_cpu_demo",
                             "config.CHECKPOINT.DIR=/tmp/vissl_pirl_bench", *overrides])
    if name == "vissl":
        cfg.MODEL.HEAD.PARAMS = VISSL_PIRL_HEADS
        loss = vissl_loss or vissl_nce_loss(dataset_size, num_negatives, DIM)
        chain = [dict(VISSL_PIRL_TRANSFORMS[0], crop_size_image=image_size),
                 *VISSL_PIRL_TRANSFORMS[1:]]
        transform, collate = get_transform(chain), get_collator("patch_and_image_collator", {})
    else:
        loss = PIRLLoss(num_train_samples=dataset_size, num_negatives=num_negatives)
        transform = get_transform(cfg.DATA.TRAIN.TRANSFORMS)
        collate = get_collator("pirl_collator", {"transformed_key": "patches"})
    model = build_model(cfg.MODEL, cfg.OPTIMIZER).to(device)
    optimizer = build_optimizer(dict(cfg.OPTIMIZER, param_schedulers={}, **{"lr": 0.03}))
    optimizer.set_param_groups(model.parameters())
    return SimpleNamespace(model=model, loss=loss.to(device), optimizer=optimizer,
                           transform=transform, collate=collate, device=device)


def forward_and_loss(parts: SimpleNamespace, inputs: Dict[str, torch.Tensor],
                     targets: torch.Tensor, amp_dtype: Optional[torch.dtype] = None) -> tuple:
    """``(model output, loss)``: the forward pass under ``amp_dtype`` autocast when given."""
    with torch.autocast(parts.device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
        output = parts.model(inputs)
        return output, parts.loss(output, targets)


def backward(parts: SimpleNamespace, value: torch.Tensor) -> None:
    parts.optimizer.zero_grad()
    value.backward()


def update(parts: SimpleNamespace, output: List[torch.Tensor], targets: torch.Tensor) -> None:
    """The SGD step and, with the plugin's loss, the memory bank's update."""
    parts.optimizer.step(where=0.0)
    if isinstance(parts.loss, PIRLLoss):
        parts.loss.memory_bank.update(*parts.loss.memory_update_inputs(output, targets))


def train_once(parts: SimpleNamespace, inputs: Dict[str, torch.Tensor], targets: torch.Tensor,
               amp_dtype: Optional[torch.dtype] = None) -> None:
    """Forward under ``amp_dtype`` autocast when given, loss, backward, SGD step, bank update;
    synchronises a CUDA device at the end."""
    output, value = forward_and_loss(parts, inputs, targets, amp_dtype)
    backward(parts, value)
    update(parts, output, targets)
    if parts.device.type == "cuda":
        torch.cuda.synchronize(parts.device)


def make_train_step(name: str, photos: List[Image.Image], overrides: List[str],
                    dataset_size: int, num_negatives: int, image_size: int,
                    device: torch.device = torch.device("cpu"), augment_each_step: bool = True,
                    amp_dtype: Optional[torch.dtype] = None,
                    vissl_loss: Optional[NCELossWithMemory] = None) -> Callable[[], None]:
    """One training step of ``name`` (``training_parts``) on ``photos``: augment and collate (or
    once, outside the step, when not ``augment_each_step``), then ``train_once``. The returned
    function's ``loss`` attribute is the loss (with its bank)."""
    indices = torch.randperm(dataset_size, generator=torch.Generator().manual_seed(0))[:len(photos)]
    parts = training_parts(name, overrides, dataset_size, num_negatives, image_size, device,
                           vissl_loss)
    targets = indices.to(device)

    def batch() -> dict:
        data = parts.collate([parts.transform({"data": [photo], "label": [int(i)],
                                               "data_valid": [1], "data_idx": [int(i)]})
                              for photo, i in zip(photos, indices)])
        return {key: data[key][0].to(device) for key in ("patches", "images")}
    fixed = None if augment_each_step else batch()

    def run() -> None:
        train_once(parts, batch() if fixed is None else fixed, targets, amp_dtype)
    run.loss = parts.loss  # what a caller inspects after a step (the bank)
    return run


def bench_train_step(repeats: int, batch: int = 16) -> Dict[str, float]:
    torch.manual_seed(0)
    photos = source_photographs()[:batch]
    return interleaved_median_seconds(
        {name: make_train_step(name, photos, STEP_OVERRIDES, dataset_size=136, num_negatives=64,
                               image_size=128) for name in ("vissl", "ours")}, repeats)


LAUNCH_CONFIGURATIONS = {"loader_eager": (),
                         "on_device_eager": ("ON_DEVICE", "AUGMENTATION_COMPILED"),
                         "loader_compiled": ("COMPILE",),
                         "on_device_compiled": ("ON_DEVICE", "AUGMENTATION_COMPILED", "COMPILE")}


def bench_launches(repeats: int) -> Dict[str, dict]:
    """Kernel launches per training step by part (``step_launches.py``: the paper config,
    ResNet-50, one CPU process) for both augmentation paths, eager and with ``MODEL.COMPILE``,
    each in its own process; and each run's first step's seconds (the compilation). Counts do
    not vary: ``repeats`` is not used."""
    images = imagenet_size_jpegs()[0].parent
    results = {}
    for name, flags in LAUNCH_CONFIGURATIONS.items():
        work = Path(tempfile.mkdtemp(prefix="vissl_pirl_launches_"))
        counted = step_launches.count_in_a_process(
            images, work, [getattr(step_launches, flag) for flag in flags])
        results[name] = {key: counted[key] for key in (
            "parts", "total", "loader", "compiled_kernels", "heads_in_trunk_forward",
            "first_step_s")}
        shutil.rmtree(work)
    return results


PARTS = {"loss": ("loss_step_seconds", bench_loss),
         "augmentation": ("augmentation_images_per_second", bench_augmentation),
         "data_loader": ("data_loader_images_per_second", bench_data_loader),
         "train_step": ("train_step_seconds", bench_train_step),
         "imagenet_size": ("imagenet_size_jpegs", bench_imagenet_size),
         "launches": ("launches_per_step", bench_launches),
         "device_augmentation_launches": ("device_augmentation_launches",
                                          device_augmentation_launches.bench)}


def table(results: Dict[str, Dict]) -> List[tuple]:
    """(label, VISSL, ours, speed-up) rows of the measured parts."""
    rows: List[tuple] = []
    loss = results.get("loss_step_seconds")
    if loss:
        rows += [(label, loss["vissl_per_sample"], loss[key], loss["vissl_per_sample"] / loss[key])
                 for label, key in (
                     ("loss+bank step, per-sample (s)", "ours_per_sample"),
                     ("loss+bank step, per-sample fp16 bank (s)", "ours_per_sample_fp16"),
                     ("loss+bank step, shared negatives (s)", "ours_shared"))]
    augmentation = results.get("augmentation_images_per_second")
    if augmentation:
        rows += [(label, augmentation[key]["vissl"], augmentation[key]["ours"],
                  augmentation[key]["ours"] / augmentation[key]["vissl"]) for label, key in (
                     ("(a) transform, images/s, 1 core", "transform"),
                     ("(b) decode + transform, images/s, 1 core", "decode_and_transform"))]
    loader = results.get("data_loader_images_per_second")
    if loader:
        rows += [(f"(c) data loader, {count} workers, images/s", loader[f"vissl_{count}_workers"],
                  loader[f"ours_{count}_workers"],
                  loader[f"ours_{count}_workers"] / loader[f"vissl_{count}_workers"])
                 for count in (0, 2)]
    imagenet = results.get("imagenet_size_jpegs")
    if imagenet:
        rates, sizes = imagenet["samples_per_second_per_core"], imagenet["bytes_per_sample"]
        rows += [(f"(d) ImageNet-size JPEGs, loader side, {label}, samples/s, 1 core",
                  rates["vissl"], rates[key], rates[key] / rates["vissl"])
                 for label, key in (("ours on the CPU", "ours_cpu"),
                                    ("ours on_device", "ours_on_device"))]
        rows += [(f"(d) bytes per sample to the training process, {label}", sizes["vissl"],
                  sizes[key], sizes["vissl"] / sizes[key])
                 for label, key in (("ours on the CPU", "ours_cpu"),
                                    ("ours on_device", "ours_on_device"))]
    step = results.get("train_step_seconds")
    if step:
        rows.append(("CPU demo training step (s)", step["vissl"], step["ours"],
                     step["vissl"] / step["ours"]))
    return rows


def launch_table(launches: Dict[str, dict]) -> List[str]:
    """Launches per training step by part, one column per configuration."""
    names = list(launches)
    lines = [f"{'launches per step':18s}" + "".join(f"{name:>20s}" for name in names)]
    for part in (*next(iter(launches.values()))["parts"], "total"):
        cells = []
        for name in names:
            row = launches[name]
            count = row["total"] if part == "total" else row["parts"][part]
            in_trunk = part == "heads" and row["heads_in_trunk_forward"]
            cells.append(f"{'(in trunk)' if in_trunk else count:>20}")
        lines.append(f"{part:18s}" + "".join(cells))
    lines.append(f"{'first step (s)':18s}" + "".join(f"{launches[name]['first_step_s']:>20.1f}"
                                                     for name in names))
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results.json"))
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--parts", nargs="+", choices=sorted(PARTS), default=sorted(PARTS),
                        help="measure only these; the others keep their numbers in --out")
    args = parser.parse_args()
    results = json.loads(args.out.read_text()) if args.out.exists() else {}
    loads = results.setdefault("load_average_1_min_at_start", {})
    for part in args.parts:
        key, measure = PARTS[part]
        loads[part] = os.getloadavg()[0]
        results[key] = measure(args.repeats)
    rows = table(results)
    print(f"\n{'measurement':44s} {'VISSL':>10s} {'vissl-pirl':>11s} {'speed-up':>9s}")
    for label, vissl, ours, ratio in rows:
        print(f"{label:44s} {vissl:10.4f} {ours:11.4f} {ratio:8.2f}x")
    imagenet = results.get("imagenet_size_jpegs")
    if imagenet:
        rates = imagenet["samples_per_second_per_core"]
        device = imagenet["device_augmentation_batch_32"]
        print(f"ImageNet-size JPEGs: decoding alone {rates['decode_only']:.1f} samples/s per core;"
              f" on_device's loader side {rates['ours_on_device'] / rates['ours_cpu']:.2f}x ours "
              f"on the CPU; the device-side augmentation of a batch of 32 on this CPU "
              f"({device['cpu_threads']} threads): {device['seconds']:.3f} s")
    launches = results.get("launches_per_step")
    if launches:
        print("\n" + "\n".join(launch_table(launches)))
    augmentation_launches = results.get("device_augmentation_launches")
    if augmentation_launches:
        print("Device augmentation, launches per batch (8 / 32): compiled "
              f"{augmentation_launches['compiled']['launches_per_batch']}, eager "
              f"{augmentation_launches['eager']['launches_per_batch']}; host time of a tiny "
              "batch of 8 in trivial torch ops: "
              f"{augmentation_launches['host_time_trivial_ops_tiny_batch_8']}")
    results["speedups"] = {label: ratio for label, _, _, ratio in rows}
    results["torch_threads"] = torch.get_num_threads()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"\nJSON: {args.out}")


if __name__ == "__main__":
    main()

"""The device augmentation's kernel launches and host time per batch (issue 26, item 2).

    .venv/bin/python benchmarks/device_augmentation_launches.py [--repeats 15]

(also ``make bench``'s part ``device_augmentation_launches`` of ``run_benchmarks.py``).

* Launches: ``DevicePirlAugmentation`` of the paper's config (``ImgPilToPirlJigsaw`` defaults:
  I at 224, the jigsaw crop at 255, nine 64-px patches, the authors' recipe with
  ``photometric_p`` 0.66 and ``grayscale_p`` 0.2), counted by ``LaunchCounter`` over one batch
  after a warm-up batch, at batch 8 and 32, on small images (the count does not depend on the
  images' size): compiled, as it runs on CUDA (inductor's kernels counted by inductor), and
  eager (``compile=False``, one launch per operator). The compiled warm-up batch is the
  compile: its seconds are reported (on this CPU, with an empty inductor cache: a cold
  compile).
* Host time: the same transform at a tiny size (``TINY``: 8-px images, I at 8 px, a 12-px
  jigsaw crop, 3-px patches) on batch 8, one thread, where the time is the host's (dispatch
  bound), in units of one trivial torch operator (``x.add_(1)`` on a one-element tensor): all
  timed in the same process, taking turns, median of ``repeats``.
"""
import argparse
import json
import os
import statistics
import tempfile
import time
from typing import Callable, Dict
from unittest import mock

import numpy as np
import torch
from PIL import Image

import vissl_pirl_plugin  # noqa: F401  (first: its VISSL compatibility patches)
from vissl_pirl_plugin.data.pirl_collator import pirl_collator
from vissl_pirl_plugin.data.transforms.batched.pirl_augmentation import DevicePirlAugmentation
from vissl_pirl_plugin.data.transforms.pirl_jigsaw_transform import ImgPilToPirlJigsaw
from vissl_pirl_plugin.utils.launch_counter import LaunchCounter

TINY = {"image_crop_size": 8, "jigsaw_crop_size": 12, "patch_size": 3}
TRIVIAL_OPS_PER_CALL = 100  # trivial operators per timed call, so that timing them costs little


def augmentation_call(batch: int, compile: bool, image_side: int = 40,
                      **transform_params) -> Callable[[], Dict[str, torch.Tensor]]:
    """One batch's ``DevicePirlAugmentation(compile=compile)`` of
    ``ImgPilToPirlJigsaw(**transform_params)`` on ``batch`` images of about ``image_side`` px
    (a few shapes), a generator re-seeded each call; warmed up once (its seconds:
    ``run.warm_up_seconds``)."""
    transform = ImgPilToPirlJigsaw(on_device=True, **transform_params)
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 256, (image_side - index % 3, image_side, 3),
                                           dtype=np.uint8)) for index in range(batch)]
    collated = pirl_collator([{"data": [transform(image)], "label": [i], "data_valid": [1],
                               "data_idx": [i]} for i, image in enumerate(images)])
    canvas, sizes = collated["pixels"][0], collated["pixel_sizes"][0]
    augmentation = DevicePirlAugmentation(transform, compile=compile)
    generator = torch.Generator()

    def run() -> Dict[str, torch.Tensor]:
        return augmentation(canvas, sizes, generator.manual_seed(0))
    with tempfile.TemporaryDirectory() as cache, \
            mock.patch.dict(os.environ, {"TORCHINDUCTOR_CACHE_DIR": cache}):  # a cold compile
        start = time.perf_counter()
        run()
        run.warm_up_seconds = time.perf_counter() - start
    return run


def launches_per_batch(batch: int, compile: bool) -> LaunchCounter:
    """The launches of one batch of the paper's config (``LaunchCounter``: ``total``,
    ``by_op``; ``compile_seconds``: the compiled warm-up's)."""
    run = augmentation_call(batch, compile)
    with LaunchCounter() as launches:
        run()
    launches.compile_seconds = run.warm_up_seconds
    return launches


def host_time_in_trivial_ops(repeats: int, batch: int = 8) -> Dict[str, float]:
    """A batch's time on ``TINY`` on one thread, compiled and eager, in trivial torch operators
    (``x.add_(1)``)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        runs = {name: augmentation_call(batch, compile, image_side=8, **TINY)
                for name, compile in (("compiled", True), ("eager", False))}
        one = torch.zeros(1)

        def trivial() -> None:
            for _ in range(TRIVIAL_OPS_PER_CALL):
                one.add_(1)
        runs["trivial"] = trivial
        times: Dict[str, list] = {name: [] for name in runs}
        for _ in range(repeats):
            for name, timed in runs.items():
                start = time.perf_counter()
                timed()
                times[name].append(time.perf_counter() - start)
    finally:
        torch.set_num_threads(threads)
    trivial_seconds = statistics.median(times.pop("trivial")) / TRIVIAL_OPS_PER_CALL
    return {name: statistics.median(seconds) / trivial_seconds for name, seconds in times.items()}


def bench(repeats: int) -> Dict[str, object]:
    """``run_benchmarks.py``'s part: launches per batch at 8 and 32, compiled (with the
    compile's seconds) and eager (with the 5 most launched operators), and the host time of a
    tiny batch of 8 in trivial operators."""
    results: Dict[str, object] = {}
    for name, compile in (("compiled", True), ("eager", False)):
        launches = {batch: launches_per_batch(batch, compile) for batch in (8, 32)}
        results[name] = {
            "launches_per_batch": {str(batch): counter.total
                                   for batch, counter in launches.items()},
            "most_launched_at_32": dict(launches[32].by_op.most_common(5))}
        if compile:
            results[name]["compile_seconds"] = {str(batch): counter.compile_seconds
                                                for batch, counter in launches.items()}
    results["host_time_trivial_ops_tiny_batch_8"] = host_time_in_trivial_ops(max(15, repeats))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    print(json.dumps(bench(parser.parse_args().repeats), indent=2))


if __name__ == "__main__":
    main()

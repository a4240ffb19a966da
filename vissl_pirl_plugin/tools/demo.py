"""``make demo``: PIRL on the CPU on real photographs, then a linear probe and Fig. 4.

1. builds the embedded dataset (``vissl_pirl_plugin.tools.demo_data``: 169 labelled
   photographs from Debian's Tux Paint stamps) if it is missing;
2. pre-trains ``config=pretrain/pirl/pirl_jigsaw_cpu_demo`` with the plugin's
   launcher, in a child process as ``tools/run_distributed_engines.py`` would, on all
   photographs but every ``--knn-holdout``-th of each class, which the kNN monitor
   (``HOOKS.KNN_MONITOR``) classifies against the memory bank during training;
   the kNN accuracy per evaluation is printed and drawn against the epoch to ``knn.png``;
3. probes the frozen trunk and the same trunk at its random initialisation with
   ``vissl_pirl_plugin.tools.linear_probe`` (category and identity probes) and prints both;
4. runs the invariance analysis (``vissl_pirl_plugin.tools.invariance``) and writes its PNG.

Everything lands in ``checkpoints/pirl_jigsaw_cpu_demo-<time>/``, with the numbers in
``demo_results.json``. Extra arguments are Hydra overrides for the pre-training, e.g.
``python -m vissl_pirl_plugin.tools.demo config.OPTIMIZER.num_epochs=20``.
"""
import argparse
import json
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from torchvision.datasets import ImageFolder

from vissl_pirl_plugin.tools.command_line import run_tool
from vissl_pirl_plugin.tools.demo_data import DEMO_ROOT, build_demo_dataset
from vissl_pirl_plugin.tools.invariance import invariance_distances, plot_histograms
from vissl_pirl_plugin.tools.linear_probe import best_stage, format_results, run_probes
from vissl_pirl_plugin.data.robust_disk_dataset import read_image_folder
from vissl_pirl_plugin.tools.plotting import new_axes, save_png
from vissl_pirl_plugin.tools.trained_model import config_beside, run_config

DEMO_CONFIG = "config=pretrain/pirl/pirl_jigsaw_cpu_demo"


def epoch_losses(stdout_json: Path) -> Dict[int, float]:
    """Mean loss of each epoch logged by VISSL's LogLossLrEtaHook."""
    losses: Dict[int, List[float]] = defaultdict(list)
    for line in stdout_json.read_text().splitlines():
        record = json.loads(line)
        if "loss" in record:
            losses[int(record["ep"])].append(float(record["loss"]))
    return {epoch: sum(values) / len(values) for epoch, values in sorted(losses.items())}


def hold_out(images: Path, out: Path, every: int) -> Tuple[Path, Path]:
    """Copies every ``every``-th image of each class (in name order, starting with the first) to
    ``out/val/<class>/`` and the others to ``out/train/<class>/``; returns both folders."""
    for folder in sorted(path for path in images.iterdir() if path.is_dir()):
        for position, image in enumerate(sorted(path for path in folder.iterdir() if path.is_file())):
            split = out / ("val" if position % every == 0 else "train") / folder.name
            split.mkdir(parents=True, exist_ok=True)
            shutil.copy2(image, split / image.name)
    return out / "train", out / "val"


def knn_records(metrics_json: Path) -> List[Dict[str, float]]:
    """The kNN monitor's records of VISSL's metrics file."""
    return [record for record in map(json.loads, metrics_json.read_text().splitlines())
            if "knn_top1" in record]


def plot_knn_curve(records: List[Dict[str, float]], out: Path, title: str,
                   majority: float, num_classes: int) -> Path:
    """Top-1 (and, with more than 5 classes, top-5) kNN accuracy against the epoch."""
    figure, axes = new_axes()
    epochs = [record["epoch"] for record in records]
    for key, label in (("knn_top1", "top-1"), ("knn_top5", "top-5"))[:1 + (num_classes > 5)]:
        axes.plot(epochs, [record[key] for record in records], marker="o", markersize=3,
                  label=f"kNN {label} (last {records[-1][key]:.3f})")
    axes.axhline(majority, color="grey", linestyle=":", linewidth=1,
                 label=f"majority class ({majority:.3f})")
    axes.set_xlabel("epoch")
    axes.set_ylabel("accuracy on held-out photographs")
    axes.set_ylim(0.0, 1.02)
    return save_png(figure, axes, title, out)


def print_knn_curve(records: List[Dict[str, float]], val: Path) -> None:
    print(f"\nepoch  kNN top-1  top-5  seconds  (memory-bank kNN monitor, {records[0]['knn_images']} "
          f"held-out photographs in {val})")
    for record in records:
        print(f"{record['epoch']:5d}  {record['knn_top1']:9.3f}  {record['knn_top5']:5.3f}  "
              f"{record['knn_seconds']:7.2f}")


def pretrain(data: Path, run_dir: Path, overrides: List[str], val: Optional[Path]) -> Path:
    monitor = [f"config.HOOKS.KNN_MONITOR.VAL_DATA_PATH={val}"] if val else []
    subprocess.run([sys.executable, "-m", "vissl_pirl_plugin.engine.launcher", DEMO_CONFIG,
                    f"config.DATA.TRAIN.DATA_PATHS=[{data}]", f"config.CHECKPOINT.DIR={run_dir}",
                    *monitor, *overrides], check=True)
    losses = epoch_losses(run_dir / "stdout.json")
    step = max(1, len(losses) // 10)
    print("\nepoch  mean loss  (pirl_loss, one CPU process)")
    for epoch, loss in losses.items():
        if epoch % step == 0 or epoch == max(losses):
            print(f"{epoch:5d}  {loss:9.4f}")
    return (run_dir / "checkpoint.torch").resolve()


def main(argv: List[str]) -> Dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEMO_ROOT,
                        help="where the embedded dataset is (built there if missing)")
    parser.add_argument("--out", type=Path, default=Path("checkpoints"))
    parser.add_argument("--transforms", type=int, default=10,
                        help="transform draws per image for the invariance analysis")
    parser.add_argument("--seed", type=int, default=0, help="seed of the probes and analysis")
    parser.add_argument("--knn-holdout", type=int, default=5,
                        help="hold out every N-th photograph of each class from pre-training for "
                             "the kNN monitor (0: pre-train on all, no monitor)")
    args, overrides = parser.parse_known_args(argv)

    started = time.time()
    images = build_demo_dataset(args.data).resolve()
    run_dir = args.out.resolve() / time.strftime("pirl_jigsaw_cpu_demo-%Y%m%d-%H%M%S")
    train, val = (hold_out(images, run_dir / "knn_split", args.knn_holdout)
                  if args.knn_holdout > 0 else (images, None))
    checkpoint = pretrain(train, run_dir, overrides, val)
    print(f"Checkpoint: {checkpoint}")
    knn, knn_png = [], None
    if val is not None:
        knn = knn_records(run_dir / "metrics.json")
        print_knn_curve(knn, val)
        targets = ImageFolder(str(val)).targets
        majority = max(targets.count(label) for label in set(targets)) / len(targets)
        knn_png = plot_knn_curve(knn, run_dir / "knn.png",
                                 f"memory-bank kNN monitor: {len(targets)} held-out photographs, "
                                 f"{len(ImageFolder(str(train)))} in the bank", majority,
                                 len(set(targets)))
    config = run_config(config_beside(checkpoint))

    print("\nLinear probes of the frozen trunk (average-pooled stages, logistic regression)")
    probes = {"pirl": run_probes(config, checkpoint, images, seed=args.seed),
              "random_init": run_probes(config, None, images, seed=args.seed)}
    print(format_results(probes["pirl"], images, "PIRL"))
    print(format_results(probes["random_init"], images, "random initialisation"))
    for probe in probes["pirl"]:
        pirl, random_init = (max(probes[model][probe].values()) for model in probes)
        print(f"{probe} probe, best stage: PIRL {pirl:.3f} "
              f"({best_stage(probes['pirl'][probe])}) vs random init {random_init:.3f} "
              f"({best_stage(probes['random_init'][probe])})")

    photos, _ = read_image_folder(images)
    distances = {label: invariance_distances(config, source, photos, args.transforms, args.seed)
                 for label, source in (("PIRL", checkpoint), ("random initialisation", None))}
    png = plot_histograms(distances, run_dir / "invariance.png",
                          f"{len(photos)} photographs x {args.transforms} transforms")
    invariance = {label: {"mean": float(values.mean()), "std": float(values.std())}
                  for label, values in distances.items()}
    for label, stats in invariance.items():
        print(f"invariance, {label}: mean l2 distance {stats['mean']:.3f} (std {stats['std']:.3f})")

    results = {"checkpoint": str(checkpoint), "images": str(images), "seed": args.seed,
               "epoch_losses": epoch_losses(run_dir / "stdout.json"), "probes": probes,
               "invariance": invariance, "knn": knn, "seconds": round(time.time() - started, 1)}
    (run_dir / "demo_results.json").write_text(json.dumps(results, indent=2))
    print(f"\nInvariance histogram (paper Fig. 4): {png}")
    if knn_png is not None:
        print(f"kNN accuracy against epoch: {knn_png}")
    print(f"Results: {run_dir / 'demo_results.json'}")
    return results


def cli() -> None:
    """The console script ``vissl-pirl-demo``: a user's mistake is one line on stderr, exit status 1."""
    run_tool(main)


if __name__ == "__main__":
    cli()

"""``make demo``: PIRL on the CPU on real photographs, then a linear probe and Fig. 4.

1. builds the embedded dataset (``vissl_pirl_plugin.tools.demo_data``: 169 labelled
   photographs from Debian's Tux Paint stamps) if it is missing;
2. pre-trains ``config=pretrain/pirl/pirl_jigsaw_cpu_demo`` with the plugin's
   launcher, in a child process as ``tools/run_distributed_engines.py`` would;
3. probes the frozen trunk and the same trunk at its random initialisation with
   ``vissl_pirl_plugin.tools.linear_probe`` (category and identity probes) and prints both;
4. runs the invariance analysis (``vissl_pirl_plugin.tools.invariance``) and writes its PNG.

Everything lands in ``checkpoints/pirl_jigsaw_cpu_demo-<time>/``, with the numbers in
``demo_results.json``. Extra arguments are Hydra overrides for the pre-training, e.g.
``python -m vissl_pirl_plugin.tools.demo config.OPTIMIZER.num_epochs=20``.
"""
import argparse
import json
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Dict, List

from vissl_pirl_plugin.tools.demo_data import DEMO_ROOT, build_demo_dataset
from vissl_pirl_plugin.tools.invariance import invariance_distances, plot_histograms
from vissl_pirl_plugin.tools.linear_probe import best_stage, format_results, run_probes
from vissl_pirl_plugin.data.robust_disk_dataset import read_image_folder
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


def pretrain(data: Path, run_dir: Path, overrides: List[str]) -> Path:
    subprocess.run([sys.executable, "-m", "vissl_pirl_plugin.engine.launcher", DEMO_CONFIG,
                    f"config.DATA.TRAIN.DATA_PATHS=[{data}]", f"config.CHECKPOINT.DIR={run_dir}",
                    *overrides], check=True)
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
    args, overrides = parser.parse_known_args(argv)

    started = time.time()
    images = build_demo_dataset(args.data).resolve()
    run_dir = args.out.resolve() / time.strftime("pirl_jigsaw_cpu_demo-%Y%m%d-%H%M%S")
    checkpoint = pretrain(images, run_dir, overrides)
    print(f"Checkpoint: {checkpoint}")
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
               "invariance": invariance, "seconds": round(time.time() - started, 1)}
    (run_dir / "demo_results.json").write_text(json.dumps(results, indent=2))
    print(f"\nInvariance histogram (paper Fig. 4): {png}")
    print(f"Results: {run_dir / 'demo_results.json'}")
    return results


def cli() -> None:
    """The console script ``vissl-pirl-demo``."""
    main(sys.argv[1:])


if __name__ == "__main__":
    cli()

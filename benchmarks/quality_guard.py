"""Quality guard: do shared negatives and an fp16 memory bank hurt learning?

Pre-trains the CPU demo config (``pirl_jigsaw_cpu_demo``: ResNet-10/32 on the 169
embedded photographs, 200 epochs) once per variant with the same budget, then probes
each frozen trunk with ``vissl_pirl_plugin.linear_probe`` (category and identity
probes, best stage). The baseline, per-sample negatives with an fp32 bank (the
paper's setting), runs with several seeds; their spread is the noise that the other
variants are compared against.

    .venv/bin/python benchmarks/quality_guard.py [--out benchmarks/quality_guard.json]
        [--seeds 0 1] [--epochs 200]

Prints a table and writes every run's numbers as JSON. Takes about 6 minutes a run on
2 cores.
"""
import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List

from vissl_pirl_plugin.demo import epoch_losses
from vissl_pirl_plugin.demo_data import build_demo_dataset
from vissl_pirl_plugin.linear_probe import run_probes
from vissl_pirl_plugin.trained_model import config_beside, run_config

VARIANTS = {  # name -> overrides of the demo config
    "per_sample_fp32": [],
    "shared_fp32": ["config.LOSS.pirl_loss.negative_sampling=shared"],
    "per_sample_fp16": ["config.LOSS.pirl_loss.memory_bank.dtype=float16"],
}
BASELINE = next(iter(VARIANTS))


def train_and_probe(name: str, overrides: List[str], seed: int, images: Path, out: Path,
                    epochs: int) -> Dict:
    run_dir = out / f"{name}-seed{seed}"
    started = time.time()
    subprocess.run([sys.executable, "-m", "vissl_pirl_plugin.launcher",
                    "config=pretrain/pirl/pirl_jigsaw_cpu_demo",
                    f"config.DATA.TRAIN.DATA_PATHS=[{images}]", f"config.CHECKPOINT.DIR={run_dir}",
                    f"config.SEED_VALUE={seed}", f"config.OPTIMIZER.num_epochs={epochs}",
                    "config.CHECKPOINT.AUTO_RESUME=false", *overrides],
                   check=True, stdout=subprocess.DEVNULL)
    seconds = time.time() - started
    checkpoint = run_dir / "checkpoint.torch"
    probes = run_probes(run_config(config_beside(checkpoint)), checkpoint, images)
    losses = epoch_losses(run_dir / "stdout.json")
    return {"variant": name, "seed": seed, "train_seconds": round(seconds, 1),
            "final_loss": losses[max(losses)],
            "best": {probe: max(values.values()) for probe, values in probes.items()},
            "probes": probes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/quality_guard.json"))
    parser.add_argument("--runs", type=Path, default=Path("checkpoints/quality_guard"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1],
                        help="seeds of the baseline; the other variants use the first")
    parser.add_argument("--epochs", type=int, default=200)
    args = parser.parse_args()
    images = build_demo_dataset(Path("data/demo")).resolve()
    runs = [train_and_probe(BASELINE, VARIANTS[BASELINE], seed, images, args.runs.resolve(),
                            args.epochs) for seed in args.seeds]
    runs += [train_and_probe(name, overrides, args.seeds[0], images, args.runs.resolve(),
                             args.epochs)
             for name, overrides in VARIANTS.items() if name != BASELINE]
    baseline = [run for run in runs if run["variant"] == BASELINE]
    noise = {probe: (max(run["best"][probe] for run in baseline)
                     - min(run["best"][probe] for run in baseline))
             for probe in baseline[0]["best"]}
    print(f"\n{'variant':16s} {'seed':>4s} {'loss':>7s} {'category':>9s} {'identity':>9s}")
    for run in runs:
        print(f"{run['variant']:16s} {run['seed']:4d} {run['final_loss']:7.3f} "
              f"{run['best']['category']:9.3f} {run['best']['identity']:9.3f}")
    means = {probe: statistics.mean(run["best"][probe] for run in baseline) for probe in noise}
    print("baseline seed spread (max - min): " +
          ", ".join(f"{probe} {value:.3f}" for probe, value in noise.items()))
    args.out.write_text(json.dumps({"runs": runs, "baseline_mean": means,
                                    "baseline_seed_spread": noise}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

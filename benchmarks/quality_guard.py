"""Quality guard: do shared negatives and an fp16 memory bank hurt learning?

Pre-trains the CPU demo config (``pirl_jigsaw_cpu_demo``: ResNet-10/32 on the 169
embedded photographs, 200 epochs) once per variant with the same budget, then probes
each frozen trunk with ``vissl_pirl_plugin.tools.linear_probe`` (category and identity
probes, best stage). The baseline, per-sample negatives with an fp32 bank (the
paper's setting), runs with more seeds than the others; the spread of its seeds is the
noise that the other variants' means are compared against. A run whose final
checkpoint exists under ``--runs`` is probed again, not retrained.

    .venv/bin/python benchmarks/quality_guard.py [--out benchmarks/quality_guard.json]
        [--seeds 0 1 2] [--variant-seeds 0 1] [--epochs 200]

Prints a table and writes every run's numbers as JSON. Takes about 6 to 7 minutes a run on
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

from vissl_pirl_plugin.tools.demo import epoch_losses
from vissl_pirl_plugin.tools.demo_data import build_demo_dataset
from vissl_pirl_plugin.tools.linear_probe import run_probes
from vissl_pirl_plugin.tools.trained_model import config_beside, run_config

VARIANTS = {  # name -> overrides of the demo config
    "per_sample_fp32": [],
    "shared_fp32": ["config.LOSS.pirl_loss.negative_sampling=shared"],
    "per_sample_fp16": ["config.LOSS.pirl_loss.memory_bank.dtype=float16"],
}
BASELINE = next(iter(VARIANTS))


def train_and_probe(name: str, overrides: List[str], seed: int, images: Path, out: Path,
                    epochs: int) -> Dict:
    run_dir = out / f"{name}-seed{seed}"
    started, seconds = time.time(), None
    if not (run_dir / f"model_final_checkpoint_phase{epochs - 1}.torch").is_file():
        subprocess.run([sys.executable, "-m", "vissl_pirl_plugin.engine.launcher",
                        "config=pretrain/pirl/pirl_jigsaw_cpu_demo",
                        f"config.DATA.TRAIN.DATA_PATHS=[{images}]",
                        f"config.CHECKPOINT.DIR={run_dir}", f"config.SEED_VALUE={seed}",
                        f"config.OPTIMIZER.num_epochs={epochs}",
                        "config.CHECKPOINT.AUTO_RESUME=false", *overrides],
                       check=True, stdout=subprocess.DEVNULL)
        seconds = round(time.time() - started, 1)
    checkpoint = run_dir / "checkpoint.torch"
    probes = run_probes(run_config(config_beside(checkpoint)), checkpoint, images)
    losses = epoch_losses(run_dir / "stdout.json")
    return {"variant": name, "seed": seed, "train_seconds": seconds,
            "final_loss": losses[max(losses)],
            "best": {probe: max(values.values()) for probe, values in probes.items()},
            "probes": probes}


def summarise(runs: List[Dict]) -> Dict[str, Dict[str, float]]:
    """Mean, min and max over seeds of each probe's best-stage accuracy."""
    return {probe: {"mean": statistics.mean(run["best"][probe] for run in runs),
                    "min": min(run["best"][probe] for run in runs),
                    "max": max(run["best"][probe] for run in runs)}
            for probe in runs[0]["best"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/quality_guard.json"))
    parser.add_argument("--runs", type=Path, default=Path("checkpoints/quality_guard"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                        help="seeds of the baseline")
    parser.add_argument("--variant-seeds", type=int, nargs="+", default=[0, 1],
                        help="seeds of the other variants")
    parser.add_argument("--epochs", type=int, default=200)
    args = parser.parse_args()
    images = build_demo_dataset(Path("data/demo")).resolve()
    runs = [train_and_probe(BASELINE, VARIANTS[BASELINE], seed, images, args.runs.resolve(),
                            args.epochs) for seed in args.seeds]
    runs += [train_and_probe(name, overrides, seed, images, args.runs.resolve(), args.epochs)
             for name, overrides in VARIANTS.items() if name != BASELINE
             for seed in args.variant_seeds]
    print(f"\n{'variant':16s} {'seed':>4s} {'loss':>7s} {'category':>9s} {'identity':>9s}")
    for run in runs:
        print(f"{run['variant']:16s} {run['seed']:4d} {run['final_loss']:7.3f} "
              f"{run['best']['category']:9.3f} {run['best']['identity']:9.3f}")
    summary = {name: summarise([run for run in runs if run["variant"] == name])
               for name in VARIANTS}
    print(f"\n{'variant':16s} {'probe':9s} {'mean':>6s} {'min':>6s} {'max':>6s} "
          f"{'mean - baseline mean':>21s}")
    for name, probes in summary.items():
        for probe, stats in probes.items():
            delta = stats["mean"] - summary[BASELINE][probe]["mean"]
            print(f"{name:16s} {probe:9s} {stats['mean']:6.3f} {stats['min']:6.3f} "
                  f"{stats['max']:6.3f} {delta:+21.3f}")
    args.out.write_text(json.dumps({"runs": runs, "summary": summary}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

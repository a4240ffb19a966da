"""``make demo``: PIRL-Jigsaw pre-training on the CPU on the embedded demo dataset.

Trains ``config=pretrain/pirl/pirl_jigsaw_cpu_demo`` with the plugin's launcher
(in a child process, as ``tools/run_distributed_engines.py`` would), then prints the mean loss of each epoch (read from VISSL's ``stdout.json``) and
where the checkpoint went. Extra arguments are Hydra overrides, e.g.
``python -m vissl_pirl_plugin.demo config.OPTIMIZER.num_epochs=2``.
"""
import json
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Dict, List

from vissl_pirl_plugin.demo_data import build_demo_dataset

DEMO_CONFIG = "config=pretrain/pirl/pirl_jigsaw_cpu_demo"


def epoch_losses(stdout_json: Path) -> Dict[int, List[float]]:
    """Per-epoch losses logged by VISSL's LogLossLrEtaHook."""
    losses: Dict[int, List[float]] = defaultdict(list)
    for line in stdout_json.read_text().splitlines():
        record = json.loads(line)
        if "loss" in record:
            losses[int(record["ep"])].append(float(record["loss"]))
    return dict(losses)


def main(overrides: List[str]) -> Path:
    data = build_demo_dataset(Path("data/demo")).resolve()
    run_dir = Path("checkpoints").resolve() / time.strftime("pirl_jigsaw_cpu_demo-%Y%m%d-%H%M%S")
    subprocess.run([sys.executable, "-m", "vissl_pirl_plugin.launcher", DEMO_CONFIG,
                    f"config.DATA.TRAIN.DATA_PATHS=[{data}]", f"config.CHECKPOINT.DIR={run_dir}",
                    *overrides], check=True)

    print("\nepoch  mean loss  (pirl_loss, one CPU process)")
    for epoch, values in sorted(epoch_losses(run_dir / "stdout.json").items()):
        print(f"{epoch:5d}  {sum(values) / len(values):9.4f}")
    checkpoint = (run_dir / "checkpoint.torch").resolve()
    print(f"\nCheckpoint: {checkpoint}")
    return checkpoint


if __name__ == "__main__":
    main(sys.argv[1:])

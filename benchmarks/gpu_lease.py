"""The whole GPU check kit on a lent, offline GPU machine, in one command, inside its time budget.

    python3 benchmarks/gpu_lease.py OUT_DIR [--device cuda] [--budget-s 420] [--wheels .whl]
        [--stages STAGE ...]

Run from the repository root, with the wheels of ``make gpu-wheels`` in ``.whl/`` (the packages
the machine lacks: VISSL, classy-vision, Hydra, ...). Standard library only until the wheels
are installed. It:

1. installs the wheels with ``pip install --no-index --no-deps --target`` (a folder outside
   the repository) and puts that folder and the repository on ``PYTHONPATH``;
2. records the environment (GPU, driver, CUDA, torch, Python, CPUs, ``/dev/shm``);
3. runs each stage in its own process under its own timeout, each check of
   ``benchmarks/gpu_check.py`` in a fresh work folder (VISSL auto-resumes from whatever an
   earlier run left in a checkpoint folder), the CUDA tests (``tests/gpu``) first;
4. stops starting stages when the budget is spent: a stage whose minimum no longer fits is
   skipped and reported, and a stage is killed at its timeout, never left hanging;
5. writes ``results.json`` (environment and every stage's measurements), ``kit.log`` (each
   stage's output, stage by stage) and ``summary.txt`` (one screen) to ``OUT_DIR``.

Exits 0 when every stage that ran passed, 1 otherwise. ``--device cpu`` is the dry run: the
same stages at small sizes on the CPU (``make gpu-sim-check`` runs it on the lent machine's
stack). docs/performance.md, "GPU check kit", gives the command for the lent machine.
"""
import argparse
import glob
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional

REPO = Path(__file__).resolve().parents[1]
KIT = REPO / "benchmarks" / "gpu_check.py"
LOG_TAIL_CHARS = 20000


@dataclass
class Stage:
    """One process of the kit: ``command(context)`` is its argv (None: nothing to run, with the
    reason in ``context.skip_reasons``), ``timeout_s`` its limit and ``minimum_s`` the least
    budget worth starting it with."""

    name: str
    command: Callable[["Run"], Optional[List[str]]]
    timeout_s: float
    minimum_s: float
    json_out: bool = True  # writes its measurements to WORK/NAME/result.json


class Run:
    """The state of one kit run: its budget, its fresh work folder, its outputs."""

    def __init__(self, out: Path, device: str, budget_s: float, work: Path,
                 env: Dict[str, str], started: float) -> None:
        self.out, self.device, self.budget_s, self.work, self.env = out, device, budget_s, work, env
        self.started = started  # the budget counts from the start, the install included
        self.results: Dict[str, dict] = {}
        self.skip_reasons: Dict[str, str] = {}
        self.log = open(out / "kit.log", "w")

    def left_s(self) -> float:
        return self.budget_s - (time.monotonic() - self.started)

    def stage_dir(self, name: str) -> Path:
        folder = self.work / name
        folder.mkdir(parents=True, exist_ok=False)  # fresh: never reused by a later stage
        return folder

    def write_log(self, title: str, text: str) -> None:
        self.log.write(f"\n===== {title} =====\n{text}\n")
        self.log.flush()


def kit_check(name: str, extra: Callable[[Run], Optional[List[str]]] = lambda run: []
              ) -> Callable[[Run], Optional[List[str]]]:
    """The argv of ``gpu_check.py --check NAME`` in its own fresh work folder."""

    def command(run: Run) -> Optional[List[str]]:
        more = extra(run)
        if more is None:
            return None
        work = run.stage_dir(name)
        return [sys.executable, str(KIT), "--device", run.device, "--check", name,
                "--workdir", str(work / "work"), "--out", str(work / "result.json"), *more]
    return command


def trained_checkpoint(run: Run) -> Optional[List[str]]:
    """The linear iteration's checkpoint: the first training stage's that passed."""
    for name, result in run.results.items():
        checkpoint = result.get("measured", {}).get("checkpoint")
        if name.startswith("train_and_resume") and result.get("status") == "passed" and checkpoint:
            return ["--checkpoint", checkpoint]
    run.skip_reasons["linear_iteration"] = "no training stage passed, so no checkpoint"
    return None


def gpu_tests(run: Run) -> Optional[List[str]]:
    if run.device != "cuda":
        run.skip_reasons["gpu_tests"] = "the CUDA tests need a CUDA device"
        return None
    return [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "gpu",
            str(REPO / "tests" / "gpu")]


def stages(device: str) -> List[Stage]:
    """The kit's stages and their budgets (seconds, on an H200; the CPU dry run at small sizes
    fits the same ones). The minimum is what a stage needs to be worth starting."""
    trainings = ("fp16", "bf16") if device == "cuda" else ("fp32",)
    training = [Stage(f"train_and_resume_{amp}", kit_check(f"train_and_resume_{amp}"),
                      timeout_s=140, minimum_s=60) for amp in trainings]
    return [
        Stage("gpu_tests", gpu_tests, timeout_s=60, minimum_s=20, json_out=False),
        Stage("loss_and_bank", kit_check("loss_and_bank"), timeout_s=60, minimum_s=20),
        training[0],
        Stage("linear_iteration", kit_check("linear_iteration", trained_checkpoint),
              timeout_s=75, minimum_s=30),
        Stage("launch_bound", kit_check("launch_bound"), timeout_s=200, minimum_s=40),
        Stage("train_step", kit_check("train_step"), timeout_s=150, minimum_s=90),
        Stage("device_augmentation", kit_check("device_augmentation"), timeout_s=180,
              minimum_s=60),
        *training[1:],  # bf16 last: the least needed if the budget runs short
    ]


def run_stage(run: Run, stage: Stage) -> dict:
    """Runs ``stage`` within its timeout and what is left of the budget; never hangs."""
    left = run.left_s()
    if left < stage.minimum_s:
        return {"status": "skipped", "why": f"{left:.0f} s of the budget left, it needs "
                                            f"{stage.minimum_s:.0f} s"}
    command = stage.command(run)
    if command is None:
        return {"status": "skipped", "why": run.skip_reasons.get(stage.name, "not applicable")}
    timeout = min(stage.timeout_s, left)
    started = time.monotonic()
    process = subprocess.Popen(command, cwd=REPO, env=run.env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        output, _ = process.communicate(timeout=timeout)
        timed_out = False
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, 9)  # the launcher's workers too
        try:
            output, _ = process.communicate(timeout=10)
        except subprocess.TimeoutExpired:  # a grandchild that left the group holds the pipe
            output = "(no output: the stage's pipe stayed open after it was killed)"
            process.wait(timeout=10)
        timed_out = True
    seconds = time.monotonic() - started
    run.write_log(f"{stage.name} ({seconds:.1f} s, exit {process.returncode})",
                  (output or "")[-LOG_TAIL_CHARS:])
    result: dict = {"seconds": round(seconds, 1)}
    measured = read_measurements(run, stage)  # a stage killed at its limit may have written some
    if measured is not None:
        result["measured"] = measured
    if timed_out:
        return {**result, "status": "timed out", "why": f"killed at its {timeout:.0f} s limit"}
    if process.returncode == 0:
        return {**result, "status": "passed"}
    return {**result, "status": "failed", "why": last_error_line(output or "", measured)}


def read_measurements(run: Run, stage: Stage) -> Optional[dict]:
    path = run.work / stage.name / "result.json"
    if not stage.json_out or not path.is_file():
        return None
    try:
        return json.loads(path.read_text()).get(stage.name)
    except (ValueError, AttributeError) as error:
        return {"error": f"unreadable {path.name}: {error}"}


def last_error_line(output: str, measured: Optional[dict]) -> str:
    if measured and measured.get("error"):
        return measured["error"].splitlines()[0][:300]
    lines = [line for line in output.splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no output"


def install_wheels(wheels: Path, site: Path) -> dict:
    """``pip install --no-index --no-deps --target site wheels/*.whl``; what was installed."""
    files = sorted(glob.glob(str(wheels / "*.whl")))
    if not files:
        return {"status": "skipped", "why": f"no wheels in {wheels} (make gpu-wheels)"}
    started = time.monotonic()
    # no --upgrade: VISSL's wheel carries a partial copy of classy_vision, and with --upgrade the
    # last copy moved into the target replaces the whole folder (classy_vision.dataset missing);
    # without it the folder is the merged one, as in a venv (the target is always new here)
    try:
        result = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index",
                                 "--no-deps", "--no-compile", "--no-cache-dir",
                                 "--target", str(site), *files], capture_output=True, text=True,
                                timeout=300)
    except subprocess.TimeoutExpired:
        return {"status": "failed", "why": "pip did not finish within 300 s"}
    if result.returncode != 0:
        return {"status": "failed", "why": (result.stderr or result.stdout)[-600:]}
    return {"status": "passed", "seconds": round(time.monotonic() - started, 1),
            "wheels": [Path(file).name for file in files]}


def environment(device: str, env: Dict[str, str]) -> dict:
    """GPU, driver, CUDA, torch, Python, CPUs and /dev/shm of this machine."""
    facts: dict = {"python": platform.python_version(), "cpus": os.cpu_count(),
                   "platform": platform.platform()}
    shm = shutil.disk_usage("/dev/shm") if os.path.isdir("/dev/shm") else None
    facts["dev_shm_gib"] = round(shm.total / 2**30, 1) if shm else None
    try:
        probe = subprocess.run(
            [sys.executable, "-c", "import json, torch; print(json.dumps({'torch': "
             "torch.__version__, 'cuda': torch.version.cuda, 'cuda_available': "
             "torch.cuda.is_available(), 'gpu': torch.cuda.get_device_name(0) if "
             "torch.cuda.is_available() else None}))"],
            capture_output=True, text=True, timeout=120, env=env)
        facts.update(json.loads(probe.stdout) if probe.returncode == 0 else
                     {"torch": f"import failed: {probe.stderr[-300:]}"})
        if shutil.which("nvidia-smi"):
            smi = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total",
                                  "--format=csv,noheader"], capture_output=True, text=True,
                                 timeout=60)
            facts["nvidia_smi"] = smi.stdout.strip() or smi.stderr.strip()[-300:]
    except (subprocess.TimeoutExpired, ValueError, OSError) as error:  # recorded; stages still run
        facts["probe_error"] = f"{type(error).__name__}: {error}"[:300]
    facts["device"] = device
    return facts


def summary(run: Run) -> str:
    env = run.results["environment"]
    lines = [f"vissl-pirl GPU check kit on {env.get('gpu') or 'cpu'} (driver/smi: "
             f"{env.get('nvidia_smi', 'n/a')}), torch {env.get('torch')} CUDA {env.get('cuda')}, "
             f"Python {env.get('python')}, {env.get('cpus')} CPUs, /dev/shm "
             f"{env.get('dev_shm_gib')} GiB", ""]
    for name, result in run.results.items():
        if name == "environment" or not isinstance(result, dict):
            continue
        line = f"{name:24s} {result['status']:9s} {result.get('seconds', ''):>7} s"
        if result.get("why"):
            line += f"  {result['why']}"
        lines.append(line)
        measured = result.get("measured") or {}
        if measured.get("lines"):  # a stage's own summary lines
            lines += [f"{'':26s}{line}" for line in measured["lines"]]
            continue
        shown = headline(measured)
        if shown:
            lines.append(f"{'':26s}" + "; ".join(f"{key}: {value}" for key, value in shown.items()))
    total = time.monotonic() - run.started
    lines += ["", f"total {total:.0f} s of a {run.budget_s:.0f} s budget"]
    return "\n".join(lines)


def headline(measured: dict) -> Dict[str, str]:
    """The numbers of a stage worth a summary line."""
    shown = {}
    for key, value in measured.items():
        if key in ("ok", "checkpoint", "error"):
            continue
        if isinstance(value, dict):
            value = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                              for k, v in value.items())
        elif isinstance(value, float):
            value = f"{value:.4g}"
        shown[key] = str(value)
    return shown


def chosen_stages(available: List[Stage], names: Optional[List[str]],
                  parser: argparse.ArgumentParser) -> List[Stage]:
    """``--stages``: the named stages in the order given; all of them without it."""
    if names is None:
        return available
    by_name = {stage.name: stage for stage in available}
    unknown = [name for name in names if name not in by_name]
    if unknown:
        parser.error(f"--stages: no stage {', '.join(unknown)}; the stages are "
                     f"{', '.join(by_name)}")
    return [by_name[name] for name in names]


def write_results(run: Run) -> str:
    """``results.json`` and ``summary.txt`` as they stand; the summary's text."""
    run.results["total_s"] = round(time.monotonic() - run.started, 1)
    (run.out / "results.json").write_text(json.dumps(run.results, indent=2, default=str))
    text = summary(run)
    (run.out / "summary.txt").write_text(text + "\n")
    return text


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder for results.json, kit.log, summary.txt")
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    parser.add_argument("--budget-s", type=float, default=420.0,
                        help="wall-clock budget of the whole run, install included")
    parser.add_argument("--wheels", type=Path, default=REPO / ".whl")
    parser.add_argument("--site", type=Path, default=None,
                        help="where the wheels go (default: a fresh temporary folder)")
    parser.add_argument("--stages", nargs="+", metavar="STAGE", default=None,
                        help="run only these stages, in this order (default: all, in the kit's "
                             "order)")
    args = parser.parse_args(argv)
    chosen = chosen_stages(stages(args.device), args.stages, parser)
    started = time.monotonic()
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="vissl_pirl_kit_"))
    site = args.site or work / "site"
    installed = install_wheels(args.wheels, site)
    paths = [str(site), str(REPO), os.environ.get("PYTHONPATH", "")]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in paths if p),
               PYTHONUNBUFFERED="1", OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "4"))
    run = Run(args.out, args.device, args.budget_s, work / "checks", env, started)
    run.results["environment"] = environment(args.device, env)
    run.results["install_wheels"] = installed
    print(f"install_wheels: {installed['status']}", flush=True)
    if installed["status"] != "failed":
        for stage in chosen:
            run.results[stage.name] = run_stage(run, stage)
            print(f"{stage.name}: {run.results[stage.name]['status']} "
                  f"({run.results[stage.name].get('seconds', 0)} s)", flush=True)
            write_results(run)  # a run cut short still leaves the stages it finished
    text = write_results(run)
    run.log.close()
    print("\n" + text)
    shutil.rmtree(work, ignore_errors=True)  # checkpoints: hundreds of MB
    failed = [name for name, result in run.results.items()
              if isinstance(result, dict) and result.get("status") in ("failed", "timed out")]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

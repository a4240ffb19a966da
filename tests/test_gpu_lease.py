"""The kit's one command for a lent GPU machine (benchmarks/gpu_lease.py): every stage in its
own process, within its timeout and the run's budget, in fresh folders, with its outputs."""
import json
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import gpu_lease  # noqa: E402


def python_stage(name: str, code: str, timeout_s: float = 30, minimum_s: float = 0,
                 json_out: bool = True) -> gpu_lease.Stage:
    """A stage that runs ``code`` in its own fresh folder (``WORK`` in the code)."""

    def command(run: gpu_lease.Run):
        work = run.stage_dir(name)
        return [sys.executable, "-c", f"WORK = {str(work)!r}\n{code}"]
    return gpu_lease.Stage(name, command, timeout_s, minimum_s, json_out)


WRITES_RESULT = ("import json, os\nassert os.listdir(WORK) == []\n"
                 "json.dump({{'{name}': {{'ok': True, 'value': 1.5}}}}, "
                 "open(os.path.join(WORK, 'result.json'), 'w'))\nprint('measured')")


def test_stages_run_in_fresh_folders_within_their_limits(tmp_path, monkeypatch):
    monkeypatch.setattr(gpu_lease, "stages", lambda device: [
        python_stage("first", WRITES_RESULT.format(name="first")),
        python_stage("again", WRITES_RESULT.format(name="again")),
        python_stage("fails", "raise SystemExit('the check failed: reason')", json_out=False),
        # a launcher's worker that would outlive its parent is killed with it
        python_stage("hangs", "import subprocess, sys, time\n"
                              "child = subprocess.Popen([sys.executable, '-c', 'import time; "
                              "time.sleep(60)'])\n"
                              f"open({str(tmp_path / 'child.pid')!r}, 'w').write(str(child.pid))\n"
                              "time.sleep(60)", timeout_s=3, json_out=False),
        # what a stage wrote before it was killed is kept; its own summary lines are shown
        python_stage("partial", "import json, os, time\n"
                                "json.dump({'partial': {'lines': ['eager: host-bound']}}, "
                                "open(os.path.join(WORK, 'result.json'), 'w'))\n"
                                "time.sleep(60)", timeout_s=3),
        python_stage("too_big", "print('never started')", minimum_s=10_000),
    ])
    started = time.monotonic()
    code = gpu_lease.main([str(tmp_path / "out"), "--device", "cpu", "--budget-s", "600",
                           "--wheels", str(tmp_path / "no_wheels")])
    assert time.monotonic() - started < 60
    assert code == 1  # a stage failed and one timed out
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["install_wheels"]["status"] == "skipped"
    assert results["environment"]["torch"] and results["environment"]["cpus"] >= 1
    assert results["first"]["status"] == results["again"]["status"] == "passed"
    assert results["first"]["measured"]["value"] == 1.5
    assert results["fails"] == {"seconds": results["fails"]["seconds"], "status": "failed",
                                "why": "the check failed: reason"}
    assert results["hangs"]["status"] == "timed out"
    child = int((tmp_path / "child.pid").read_text())
    try:
        state = (Path("/proc") / str(child) / "stat").read_text().split()[2]
    except OSError:  # gone
        state = "gone"
    assert state in ("gone", "Z", "X"), state  # killed with its stage, not sleeping on
    assert results["too_big"]["status"] == "skipped" and "budget left" in results["too_big"]["why"]
    assert results["partial"]["status"] == "timed out"
    assert results["partial"]["measured"] == {"lines": ["eager: host-bound"]}
    log = (tmp_path / "out" / "kit.log").read_text()
    assert "===== first" in log and "measured" in log and "never started" not in log
    summary = (tmp_path / "out" / "summary.txt").read_text()
    assert "hangs" in summary and "timed out" in summary and "value: 1.5" in summary
    assert f"\n{'':26s}eager: host-bound\n" in summary
    assert len(summary.splitlines()) < 20  # one screen: a line per stage, one per measurements


def test_the_lent_machines_stages_fit_its_budget():
    """The timeouts are each stage's most; their minimums fit the 7-minute budget with the
    install, so no stage is skipped on a machine as fast as the budgets assume."""
    for device in ("cuda", "cpu"):
        names = [stage.name for stage in gpu_lease.stages(device)]
        assert names[:2] == ["gpu_tests", "loss_and_bank"] and "train_step" in names
        assert "launch_bound" in names
        assert sum(stage.minimum_s for stage in gpu_lease.stages(device)) <= 420 - 30


def test_the_kit_refuses_a_used_work_folder(tmp_path):
    import subprocess

    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "checkpoint.torch").write_text("left by an earlier run")
    result = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_check.py"),
                             "--device", "cpu", "--workdir", str(tmp_path / "work"),
                             "--check", "loss_and_bank"], capture_output=True, text=True)
    assert result.returncode != 0 and "is not empty: VISSL would resume" in result.stderr


@pytest.mark.parametrize("wheels", [[], ["broken-0.1-py3-none-any.whl"]])
def test_wheels_are_installed_offline_or_the_failure_is_reported(tmp_path, wheels):
    for wheel in wheels:
        (tmp_path / wheel).write_text("not a zip")
    result = gpu_lease.install_wheels(tmp_path, tmp_path / "site")
    assert result["status"] == ("failed" if wheels else "skipped")


def test_stages_chosen_run_in_the_order_given(tmp_path, monkeypatch):
    """``--stages`` runs the named stages only, in the order given (what a short lease needs
    first), and names the stages there are when asked for one there is not."""
    monkeypatch.setattr(gpu_lease, "stages", lambda device: [
        python_stage(name, WRITES_RESULT.format(name=name)) for name in ("a", "b", "c")])
    code = gpu_lease.main([str(tmp_path / "out"), "--device", "cpu", "--wheels",
                           str(tmp_path / "no_wheels"), "--stages", "c", "a"])
    assert code == 0
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert [name for name in results if name in ("a", "b", "c")] == ["c", "a"]
    with pytest.raises(SystemExit):
        gpu_lease.main([str(tmp_path / "out2"), "--stages", "a", "nope"])

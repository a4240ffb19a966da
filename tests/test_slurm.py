"""PIRL on a real SLURM cluster (issue 28): submitted by the launcher, trained, pre-empted and
resumed, two jobs on one node, and a request that can never run refused before submission.

The cluster is started here, one node of Debian's slurm-wlm (``tests/slurm_cluster.py``), or is
the one this host submits to (``make slurm-check SLURM_PARTITION=... SLURM_CHECK_DIR=...``).
Without root or the packages the tests are skipped, saying why; ``make test`` run as root
installs the packages and sets ``PIRL_SLURM_REQUIRED=1``, which turns that skip into a failure.
"""
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

import pytest
import torch

from vissl_pirl_plugin.engine.slurm_job import VISSL_DEFAULT_PORT, rendezvous_port

from conftest import REPO, write_image_folder
from slurm_cluster import Cluster, ExistingCluster, PrivateCluster, unavailable_reason
from test_training_e2e import INSTRUMENTED, LAUNCHER

pytestmark = pytest.mark.slow

JOB_TIMEOUT_S = 900
# the demo config's small trunk, 2 processes of 1 CPU: what the pre-emption and the
# concurrency tests train
SMALL = ["config=pretrain/pirl/pirl_jigsaw_cpu_demo", "config.DATA.TRAIN.BATCHSIZE_PER_REPLICA=2",
         "config.LOSS.pirl_loss.num_negatives=4", "config.DATA.NUM_DATALOADER_WORKERS=0",
         "config.LOG_FREQUENCY=1", "config.CHECKPOINT.KEEP_LAST_ITER_CHECKPOINTS=-1"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    reason = unavailable_reason()
    if reason is not None:
        if os.environ.get("PIRL_SLURM_REQUIRED"):
            pytest.fail(f"PIRL_SLURM_REQUIRED is set but no SLURM cluster can start: {reason}")
        pytest.skip(f"no SLURM cluster: {reason}")
    started = (ExistingCluster() if os.environ.get("PIRL_SLURM_PARTITION")
               else PrivateCluster(tmp_path_factory.mktemp("slurm")).start())
    yield started
    started.stop()


@pytest.fixture
def shared(cluster: Cluster, tmp_path: Path) -> Path:
    """A folder this host and the compute nodes both see."""
    if isinstance(cluster, PrivateCluster):
        return tmp_path
    folder = cluster.folder / tmp_path.name
    folder.mkdir()
    return folder


def slurm_keys(cluster: Cluster, checkpoints: Path) -> List[str]:
    return ["config.SLURM.USE_SLURM=true", f"config.SLURM.PARTITION={cluster.partition}",
            "config.SLURM.NUM_CPU_PER_PROC=1", "config.SLURM.MEM_GB=4",
            "config.SLURM.TIME_HOURS=0", "config.SLURM.TIME_MINUTES=20",
            f"config.CHECKPOINT.DIR={checkpoints}"]


def launch(cluster: Cluster, command: List[str], cwd: Path, env: Dict[str, str] = None,
           expect_rc: int = 0) -> subprocess.CompletedProcess:
    """Runs a launcher command on this host (it returns once the job is submitted)."""
    env = dict(cluster.env, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1",
               PYTHONPATH=str(REPO / "tests"), **(env or {}))  # the job imports instrumented_launch
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == expect_rc, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def submitted_job(cluster: Cluster, result: subprocess.CompletedProcess) -> str:
    job_id = re.search(r"^SUBMITTED: (\d+) ", result.stdout, re.M).group(1)
    if isinstance(cluster, ExistingCluster):
        cluster.submitted.append(job_id)
    return job_id


def job_output(result: subprocess.CompletedProcess) -> Path:
    """The job's output log, as the launcher told the user to follow it."""
    return Path(re.search(r"tail -f (\S+)", result.stdout).group(1))


def wait_until_completed(cluster: Cluster, job_id: str, log: Path) -> None:
    state = cluster.wait_until_done(job_id, JOB_TIMEOUT_S, describe=lambda: tail(log))
    assert state == "COMPLETED", f"job {job_id} ended {state}:\n{tail(log)}\n{tail(err_of(log))}"


def err_of(log: Path) -> Path:
    return log.with_suffix(".err")


def tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


def docs_cpu_cluster_command() -> List[str]:
    """The CPU-cluster command of docs/training.md's SLURM section, word by word."""
    blocks = re.findall(r"```bash\n(.*?)```", (REPO / "docs" / "training.md").read_text(), re.S)
    commands = [block for block in blocks
                if "config.SLURM.USE_SLURM=true" in block and "config.MACHINE.DEVICE=cpu" in block]
    assert len(commands) == 1, "docs/training.md has one CPU-cluster command"
    return shlex.split(commands[0].replace("\\\n", " "), comments=True)


def with_values(words: List[str], **values: str) -> List[str]:
    """``words`` with the value of each ``config.KEY=`` named in ``values`` replaced."""
    keys = {f"config.{key.replace('__', '.')}": value for key, value in values.items()}
    replaced = [f"{word.split('=')[0]}={keys[word.split('=')[0]]}" if word.split("=")[0] in keys
                else word for word in words]
    assert sum(word.split("=")[0] in keys for word in words) == len(keys), words
    return replaced


def test_the_docs_cpu_cluster_command_trains_the_paper_config_with_two_processes(cluster, shared):
    """docs/training.md's command for a CPU cluster, as written (its paths and partition
    replaced): the paper config, 2 processes on one node, to the final checkpoint, the bank
    updated and logged; the launcher says where the job's output is."""
    images = write_image_folder(shared / "images", num_images=4)
    words = with_values(docs_cpu_cluster_command(), DATA__TRAIN__DATA_PATHS=f"[{images}]",
                        CHECKPOINT__DIR=str(shared / "ckpt"), SLURM__PARTITION=cluster.partition)
    assert words[:2] == ["python", "tools/run_distributed_engines.py"]
    result = launch(cluster, [sys.executable, LAUNCHER, *words[2:]], cwd=shared)
    job_id, log = submitted_job(cluster, result), job_output(result)
    assert log.parent == shared / "ckpt" / "slurm_logs"  # LOG_FOLDER under CHECKPOINT.DIR
    assert f"squeue -j {job_id}" in result.stdout
    wait_until_completed(cluster, job_id, log)
    output = log.read_text()
    assert "world_size: 2" in output
    assert "Memory bank: first update at training step 0, 4 entries of the global batch" in output
    assert "Memory bank after epoch 0: 4 of 4 rows written (100.0%), mean norm 1.0000." in output
    final = torch.load(shared / "ckpt" / "model_final_checkpoint_phase0.torch",
                       map_location="cpu", weights_only=False)
    assert final["loss"]["memory_bank.written"].tolist() == [1, 1, 1, 1]


def logged_losses(log: Path) -> Dict[int, List[float]]:
    """Each iteration's losses in a job's output, one per run that logged it (the output is
    appended to when the job is requeued; VISSL's stdout.json is rewritten)."""
    losses: Dict[int, List[float]] = {}
    for iteration, loss in re.findall(r"Rank: 0; \[ep: \d+\] iter: (\d+); .*?loss: ([\d.]+);",
                                      log.read_text()):
        losses.setdefault(int(iteration), []).append(float(loss))
    return losses


def test_a_usr2_preemption_requeues_and_resumes_with_the_bank_restored(cluster, shared):
    """submitit's pre-emption path on a real scheduler, 2 processes, 2 epochs of 4 steps: the
    job pauses in its 7th step (iteration 6; the newest checkpoint is epoch 0's, iteration 4),
    is sent USR2 as SLURM sends it, requeues itself and resumes from epoch 0's checkpoint with
    its bank and Z: iterations 4 and 5 give the same losses as before the pre-emption, and the
    log says how many rows the checkpoint restored. (From an iteration checkpoint, mid-epoch,
    the rest of the epoch draws other augmentations and negatives: docs/reliability.md.)"""
    images = write_image_folder(shared / "images", num_images=16, size=72)
    checkpoints, dumps, paused = shared / "ckpt", shared / "dumps", shared / "paused"
    dumps.mkdir()
    result = launch(cluster, [sys.executable, INSTRUMENTED, str(dumps), *SMALL,
                              f"config.DATA.TRAIN.DATA_PATHS=[{images}]",
                              "config.DISTRIBUTED.NUM_PROC_PER_NODE=2", "config.OPTIMIZER.num_epochs=2",
                              "config.CHECKPOINT.CHECKPOINT_FREQUENCY=1",
                              "config.LOSS.pirl_loss.loss_type=nce",  # the paper's, with Z
                              *slurm_keys(cluster, checkpoints)], cwd=shared,
                    env={"PIRL_TEST_PAUSE_STEP": "7", "PIRL_TEST_PAUSE_FILE": str(paused)})
    job_id, log = submitted_job(cluster, result), job_output(result)
    cluster.wait_for_file(paused, job_id, JOB_TIMEOUT_S,
                          describe=lambda: tail(log) + tail(err_of(log)))
    cluster.run("scancel", "--signal=USR2", job_id)  # what SLURM sends before pre-empting
    wait_until_completed(cluster, job_id, log)
    assert cluster.restarts(job_id) == 1
    output = log.read_text()
    assert "Caught signal SIGUSR2 on" in output and f"Requeued job {job_id}" in output
    losses = logged_losses(log)
    assert {i: len(losses[i]) for i in range(8)} == {0: 1, 1: 1, 2: 1, 3: 1, 4: 2, 5: 2, 6: 1, 7: 1}
    assert losses[4][0] == losses[4][1] and losses[5][0] == losses[5][1]
    saved = torch.load(checkpoints / "model_phase0.torch", map_location="cpu",
                       weights_only=False)["loss"]
    for rank in (0, 1):
        resumed = torch.load(dumps / f"state_start_rank{rank}.pt")  # the second run's start
        assert resumed["iteration"] == 4
        assert torch.equal(resumed["bank"], saved["memory_bank.embeddings"])
        assert torch.equal(resumed["log_z"], saved["log_norm_constant"])
    assert torch.isfinite(saved["log_norm_constant"])
    assert saved["memory_bank.written"].tolist() == [1] * 16
    assert ("Memory bank: restored from the checkpoint, 16 of 16 rows written before it"
            in output)
    assert "Memory bank after epoch 1: 16 of 16 rows written (100.0%)" in output
    assert (checkpoints / "model_final_checkpoint_phase1.torch").exists()


def test_two_jobs_on_one_node_meet_at_ports_of_their_own(cluster, shared):
    """Both jobs wait for each other after their ranks met, so both hold their rendezvous port
    at once; with VISSL's fixed PORT_ID 40050 the second would fail to bind it."""
    barrier = shared / "barrier"
    barrier.mkdir()
    jobs = {}
    for name in ("a", "b"):
        images = write_image_folder(shared / f"images_{name}", num_images=8, size=72)
        (shared / f"dumps_{name}").mkdir()
        result = launch(cluster, [sys.executable, INSTRUMENTED, str(shared / f"dumps_{name}"), *SMALL,
                                  f"config.DATA.TRAIN.DATA_PATHS=[{images}]",
                                  "config.OPTIMIZER.num_epochs=1",
                                  f"+config.SLURM.ADDITIONAL_PARAMETERS.nodelist={cluster.node}",
                                  *slurm_keys(cluster, shared / f"ckpt_{name}")], cwd=shared,
                        env={"PIRL_TEST_BARRIER_DIR": str(barrier), "PIRL_TEST_BARRIER_COUNT": "2"})
        jobs[submitted_job(cluster, result)] = (job_output(result), shared / f"ckpt_{name}")
    ports = set()
    for job_id, (log, checkpoints) in jobs.items():
        wait_until_completed(cluster, job_id, log)
        assert (checkpoints / "model_final_checkpoint_phase0.torch").exists()
        port = int(re.search(r"init method: tcp://\S+:(\d+),", log.read_text()).group(1))
        assert port == rendezvous_port(int(job_id)) != VISSL_DEFAULT_PORT
        ports.add(port)
    assert len(ports) == 2 and sorted(os.listdir(barrier)) == sorted(jobs)


def node_memory_gb(cluster: Cluster) -> int:
    """The most memory a job may ask of one node of the partition, in GB (1024 MB)."""
    return max(int(mb.rstrip("+")) for mb in cluster.run(
        "sinfo", "--noheader", "--Node", "--partition", cluster.partition, "--format=%m").stdout.split()) // 1024


@pytest.mark.parametrize("slurm, refusal", [
    (["config.SLURM.MEM_GB=1000000"],
     lambda cluster: (f"This SLURM job could never start (partition {cluster.partition}: 1 node(s) "
                      "x 8 process(es), 64 CPUs, 1000000 GB, no GPU per node, 72 h 0 min): ",
                      f"config.SLURM.MEM_GB=1000000 but partition {cluster.partition}'s nodes have "
                      f"{node_memory_gb(cluster)} GB: set config.SLURM.MEM_GB={node_memory_gb(cluster)}")),
    (["config.SLURM.PARTITION=no_such_partition"],
     lambda cluster: ("config.SLURM.PARTITION='no_such_partition' is not a partition of this "
                      "cluster: set it to one of ", f"{cluster.partition}")),
], ids=["memory", "partition"])
def test_a_request_that_can_never_run_is_refused_at_launch(cluster, shared, slurm, refusal):
    """What a new user types first (VISSL's defaults ask for 8 CPUs for each of 8 processes
    and 72 hours), with more memory than any node has, or a partition that does not exist: one
    line names the key and the value that fits, and nothing is submitted."""
    images = write_image_folder(shared / "images", num_images=4)
    before = cluster.jobs()
    result = launch(cluster, [sys.executable, LAUNCHER, "config=pretrain/pirl/pirl_jigsaw_4node_resnet50",
                              "config.MACHINE.DEVICE=cpu", "config.DISTRIBUTED.NUM_NODES=1",
                              f"config.DATA.TRAIN.DATA_PATHS=[{images}]",
                              "config.LOSS.pirl_loss.num_negatives=2", "config.SLURM.USE_SLURM=true",
                              f"config.SLURM.PARTITION={cluster.partition}", *slurm,
                              f"config.CHECKPOINT.DIR={shared}"], cwd=shared, expect_rc=1)
    assert result.stderr.count("\n") == 1 and result.stdout == "", result.stderr
    assert result.stderr.startswith("run_distributed_engines.py: error: ")
    for part in refusal(cluster):
        assert part in result.stderr
    assert cluster.jobs() == before

"""Test helper: a real SLURM cluster for ``tests/test_slurm.py`` (and ``make slurm-check``).

Either a one-node cluster of Debian's ``slurm-wlm`` started here (``PrivateCluster``): its own
munge key and socket, ``slurm.conf``, state, spool and logs in one folder, its daemons
(``munged``, ``slurmctld``, ``slurmd``) children of this process, stopped by PID; nothing in
``/etc`` is read or written, every SLURM command finds the cluster through ``SLURM_CONF``.
Or the cluster this host already submits to (``ExistingCluster``), for a user's login node:
``PIRL_SLURM_PARTITION`` names the partition and ``PIRL_SLURM_DIR`` a folder that the compute
nodes share with this host.

``PrivateCluster`` needs root (``slurmd`` starts jobs as the submitting user) and the packages
(``make slurm-check`` and, as root, ``make test`` install them). ``unavailable_reason`` says
why a cluster cannot start, for the tests' skip message.
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Dict, List, Optional

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "sinfo", "squeue", "scontrol", "scancel", "srun")
PARTITION = "debug"
ACTIVE_STATES = {"PENDING", "RUNNING", "REQUEUED", "CONFIGURING", "COMPLETING", "SUSPENDED",
                 "REQUEUE_HOLD", "REQUEUE_FED", "RESIZING", "SIGNALING", "STAGE_OUT"}
# a requeued job waits cred_expire seconds before it may start again (120 by default)
REQUEUE_DELAY_S = 10
START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 30


def unavailable_reason() -> Optional[str]:
    """Why no SLURM cluster can be used here, or None."""
    if os.environ.get("PIRL_SLURM_PARTITION"):
        missing = [tool for tool in CLIENTS if shutil.which(tool) is None]
        return f"PIRL_SLURM_PARTITION is set but {', '.join(missing)} not on the PATH" if missing else None
    missing = [tool for tool in (*DAEMONS, *CLIENTS) if shutil.which(tool) is None]
    if missing:
        return (f"slurm-wlm and munge are not installed ({', '.join(missing)} missing): as root, "
                "`make slurm-check` or `make test` installs them (apt-get install slurm-wlm munge)")
    if os.geteuid() != 0:
        return ("a private SLURM cluster needs root (slurmd starts jobs as their user); on a "
                "cluster of your own: make slurm-check SLURM_PARTITION=<partition> "
                "SLURM_CHECK_DIR=<folder the nodes share>")
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Cluster:
    """What the tests need of a cluster: its environment, a partition and node, a shared
    folder, and the state of a job."""

    def __init__(self, folder: Path, partition: str, env: Dict[str, str]) -> None:
        self.folder, self.partition, self.env = folder, partition, env

    def run(self, *command: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(command, env=self.env, capture_output=True, text=True,
                              check=check, timeout=60)

    @property
    def node(self) -> str:
        """The first node of the partition (the tests pin concurrent jobs to it)."""
        return self.run("sinfo", "--noheader", "--Node", "--partition", self.partition,
                        "--format=%N").stdout.split()[0]

    def job_state(self, job_id: str) -> str:
        """``JobState`` of ``scontrol show job`` (``GONE`` once SLURM forgot the job)."""
        shown = self.run("scontrol", "show", "job", "--oneliner", job_id, check=False).stdout
        fields = dict(item.split("=", 1) for item in shown.split() if "=" in item)
        return fields.get("JobState", "GONE")

    def wait_until_done(self, job_id: str, timeout_s: float, describe=lambda: "") -> str:
        """Waits for the job to leave the queue (completed, failed, cancelled); its final
        state. Fails with ``describe()`` after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while (state := self.job_state(job_id)) in ACTIVE_STATES:
            assert time.monotonic() < deadline, f"job {job_id} still {state} after {timeout_s} s. {describe()}"
            time.sleep(1)
        return state

    def wait_for_file(self, path: Path, job_id: str, timeout_s: float, describe=lambda: "") -> None:
        """Waits for job ``job_id`` to write ``path``; fails if the job ends first or after
        ``timeout_s``, with ``describe()``."""
        deadline = time.monotonic() + timeout_s
        while not path.exists():
            state = self.job_state(job_id)
            assert state in ACTIVE_STATES, f"job {job_id} ended {state} before writing {path}. {describe()}"
            assert time.monotonic() < deadline, f"no {path} after {timeout_s} s. {describe()}"
            time.sleep(0.5)

    def restarts(self, job_id: str) -> int:
        """How many times SLURM restarted the job (a requeue counts one)."""
        shown = self.run("scontrol", "show", "job", "--oneliner", job_id).stdout
        return int(re.search(r"\bRestarts=(\d+)", shown).group(1))

    def jobs(self) -> List[str]:
        return self.run("squeue", "--noheader", "--format=%i").stdout.split()

    def stop(self) -> None:
        """Cancels what the tests left running."""


class ExistingCluster(Cluster):
    """The cluster this host submits to: ``PIRL_SLURM_PARTITION``, ``PIRL_SLURM_DIR``."""

    def __init__(self) -> None:
        folder = Path(os.environ.get("PIRL_SLURM_DIR") or Path.cwd() / "slurm-check").resolve()
        folder.mkdir(parents=True, exist_ok=True)
        super().__init__(folder, os.environ["PIRL_SLURM_PARTITION"], dict(os.environ))
        self.submitted: List[str] = []

    def jobs(self) -> List[str]:
        return [job for job in super().jobs() if job in self.submitted]

    def stop(self) -> None:
        for job in self.jobs():
            self.run("scancel", job, check=False)


class PrivateCluster(Cluster):
    """One node (this host) with all its CPUs and memory in partition ``debug``, 1 h limit."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        super().__init__(folder, PARTITION, dict(os.environ, SLURM_CONF=str(folder / "slurm.conf")))
        self.processes: Dict[str, subprocess.Popen] = {}

    def start(self) -> "PrivateCluster":
        folder = self.folder
        for name in ("munge-key", "munge-socket", "state", "spool", "log"):
            (folder / name).mkdir(exist_ok=True)
        (folder / "munge-key").chmod(0o700)
        (folder / "munge-socket").chmod(0o755)  # munged: every user must reach the socket
        key = folder / "munge-key" / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o600)
        munge_socket = folder / "munge-socket" / "munge.socket"
        host = socket.gethostname()
        cpus, memory_mb = self._node_resources()
        (folder / "slurm.conf").write_text("\n".join([
            "ClusterName=pirltest", f"SlurmctldHost={host}", "SlurmUser=root", "SlurmdUser=root",
            f"SlurmctldPort={free_port()}", f"SlurmdPort={free_port()}",
            "AuthType=auth/munge", "CredType=cred/munge",
            f"AuthInfo=socket={munge_socket},cred_expire={REQUEUE_DELAY_S}",
            f"StateSaveLocation={folder / 'state'}", f"SlurmdSpoolDir={folder / 'spool'}",
            f"SlurmctldPidFile={folder / 'slurmctld.pid'}", f"SlurmdPidFile={folder / 'slurmd.pid'}",
            f"SlurmctldLogFile={folder / 'log' / 'slurmctld.log'}",
            f"SlurmdLogFile={folder / 'log' / 'slurmd.log'}",
            "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none",
            "SelectType=select/cons_tres", "SelectTypeParameters=CR_Core_Memory",
            "AccountingStorageType=accounting_storage/none", "JobCompType=jobcomp/none",
            "JobAcctGatherType=jobacct_gather/none", "MpiDefault=none", "SwitchType=switch/none",
            "MailProg=/bin/true", "ReturnToService=2", "MinJobAge=3600",
            f"NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory_mb} State=UNKNOWN",
            f"PartitionName={PARTITION} Nodes={host} Default=YES MaxTime=60 State=UP", ""]))
        self._daemon("munged", "--foreground", "--force", f"--key-file={key}",
                     f"--socket={munge_socket}", f"--pid-file={folder / 'munged.pid'}",
                     f"--seed-file={folder / 'munged.seed'}", f"--log-file={folder / 'log' / 'munged.log'}")
        self._wait_for(munge_socket.exists, "munged's socket")
        self._daemon("slurmctld", "-D", "-i", "-f", self.env["SLURM_CONF"])
        self._daemon("slurmd", "-D", "-f", self.env["SLURM_CONF"], "-N", host)
        self._wait_for(lambda: self.run("sinfo", "--noheader", "--format=%T", check=False)
                       .stdout.strip() == "idle", "node idle in sinfo")
        return self

    def _node_resources(self) -> tuple:
        """``CPUs`` and ``RealMemory`` as ``slurmd -C`` measures them."""
        measured = subprocess.run(["slurmd", "-C"], capture_output=True, text=True, check=True)
        fields = dict(item.split("=", 1) for item in measured.stdout.split() if "=" in item)
        return int(fields["CPUs"]), int(fields["RealMemory"])

    def _daemon(self, name: str, *args: str) -> None:
        log = open(self.folder / "log" / f"{name}.out", "w")
        self.processes[name] = subprocess.Popen([name, *args], env=self.env, stdout=log,
                                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def _wait_for(self, ready, what: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not ready():
            dead = [name for name, process in self.processes.items() if process.poll() is not None]
            if dead or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"SLURM did not start ({what}; exited: {dead}):\n"
                                   + self.log_tails())
            time.sleep(0.5)

    def log_tails(self, lines: int = 15) -> str:
        return "\n".join(f"--- {log.name}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
                         for log in sorted((self.folder / "log").glob("*")))

    def stop(self) -> None:
        """Cancels every job and waits for it to end, then stops the daemons by PID
        (SIGTERM, SIGKILL after ``STOP_TIMEOUT_S``), and last any process this cluster started
        that is still there (a job's ``slurmstepd``, found by its ``SLURM_CONF``)."""
        if self.processes.get("slurmctld") and self.processes["slurmctld"].poll() is None:
            self.run("scancel", "--partition", self.partition, check=False)
            deadline = time.monotonic() + STOP_TIMEOUT_S
            while self.jobs() and time.monotonic() < deadline:
                time.sleep(0.5)
        for name in reversed(DAEMONS):
            process = self.processes.pop(name, None)
            if process is not None:
                stop_process(process.pid, lambda p=process: p.poll() is not None)
        for pid in self._leftover_pids():
            stop_process(pid, lambda p=pid: not Path(f"/proc/{p}").exists())

    def _leftover_pids(self) -> List[int]:
        marker = f"SLURM_CONF={self.env['SLURM_CONF']}".encode()
        pids = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and int(entry.name) != os.getpid():
                try:
                    if marker in (entry / "environ").read_bytes().split(b"\0"):
                        pids.append(int(entry.name))
                except OSError:
                    continue
        return pids


def stop_process(pid: int, gone) -> None:
    """SIGTERM, then SIGKILL if ``gone()`` is still false after ``STOP_TIMEOUT_S``."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while not gone() and time.monotonic() < deadline:
            time.sleep(0.2)
        if gone():
            return

"""A PIRL run on SLURM: checked and submitted here, trained by ``PirlSlurmJob`` on the nodes.

``submit`` replaces VISSL 0.1.6's ``launch_distributed_on_slurm``, with the same submitit
executor and these differences:

* ``MACHINE.DEVICE=cpu`` asks for no GPU (VISSL always asks for ``NUM_PROC_PER_NODE``);
* before submitting, the request is checked against the partition
  (``slurm_request.check_request_fits``) and the data against what this host sees: a path that
  does not exist here is refused, unless ``SLURM.NODE_LOCAL_DATA=true`` says that the data
  lives on the compute nodes' own disks (then the job checks it when it starts);
* ``SLURM.LOG_FOLDER`` left at VISSL's ``.`` becomes ``CHECKPOINT.DIR/slurm_logs``, and the
  launcher prints where the logs are and how to follow the job;
* ``PirlSlurmJob`` trains with ``pirl_hook_generator`` (VISSL's ``_ResumableSlurmJob``
  hard-codes ``default_hook_generator``: no memory-bank updates) and meets its ranks at a port
  of its own (``rendezvous_port``), so that two jobs on one node never collide on VISSL's
  fixed 40050.

Pre-emption is submitit's: SLURM sends USR2 (``--signal=USR2@90``, 90 s before the time
limit, or when pre-empted), submitit pickles ``PirlSlurmJob.checkpoint()``'s resubmission and
requeues the job, which resumes from the newest checkpoint in ``CHECKPOINT.DIR``.
"""
import os
import socket
from typing import Any, Callable, List

from vissl.config import AttrDict
from vissl.utils import distributed_launcher

from vissl_pirl_plugin.engine.config_validation import (
    prepare_data,
    warn_about_nce_on_a_small_dataset,
)
from vissl_pirl_plugin.engine.slurm_request import Partition, SlurmRequest, check_request_fits
from vissl_pirl_plugin.hooks.hook_generator import pirl_hook_generator

# VISSL's SLURM.PORT_ID: left at it, each job derives its own port from its job id
VISSL_DEFAULT_PORT = 40050
# below Linux's ephemeral ports (32768-60999), which the kernel gives to outgoing connections
PORT_RANGE = range(20000, 32000)
NODE_LOCAL_DATA = "NODE_LOCAL_DATA"
LOG_SUBFOLDER = "slurm_logs"
FILE_SOURCES = ("disk_folder", "disk_filelist")

HookGenerator = Callable[[AttrDict], List[Any]]


def rendezvous_port(job_id: int, configured: int = VISSL_DEFAULT_PORT) -> int:
    """The TCP port where the ranks of job ``job_id`` meet: ``configured`` if the user set
    ``SLURM.PORT_ID``, else one of ``PORT_RANGE`` taken from the job id (jobs submitted fewer
    than ``len(PORT_RANGE)`` apart never share one; a requeued job keeps its id and port)."""
    if configured != VISSL_DEFAULT_PORT:
        return configured
    return PORT_RANGE.start + job_id % len(PORT_RANGE)


class PirlSlurmJob:
    """What submitit runs on each node: VISSL's ``launch_distributed`` with the plugin's hooks.

    ``checkpoint`` is submitit's pre-emption callback: it returns the same job, which resumes
    from the newest checkpoint when SLURM restarts it.
    """

    def __init__(self, engine_name: str, config: AttrDict,
                 hook_generator: HookGenerator = pirl_hook_generator) -> None:
        self.engine_name = engine_name
        self.config = config
        self.hook_generator = hook_generator

    def __call__(self) -> None:
        import submitit

        environment = submitit.JobEnvironment()
        prepare_data(self.config)  # node-local data is first seen here
        port = rendezvous_port(int(environment.raw_job_id), self.config.SLURM.PORT_ID)
        self.config.DISTRIBUTED.INIT_METHOD = "tcp"
        self.config.DISTRIBUTED.RUN_ID = f"{environment.hostnames[0]}:{port}"
        distributed_launcher.launch_distributed(
            cfg=self.config, node_id=environment.global_rank, engine_name=self.engine_name,
            hook_generator=self.hook_generator)

    def checkpoint(self):
        import submitit

        return submitit.helpers.DelayedSubmission(
            PirlSlurmJob(self.engine_name, self.config, self.hook_generator))


def submit(cfg: AttrDict, engine_name: str, hook_generator: HookGenerator = pirl_hook_generator):
    """Checks ``cfg``'s request and data, submits a ``PirlSlurmJob`` and prints how to follow
    it; returns submitit's job. A check that fails raises ``ValueError`` before submission."""
    import submitit
    from submitit.core.utils import FailedJobError

    if cfg.SLURM.LOG_FOLDER in ("", "."):
        cfg.SLURM.LOG_FOLDER = os.path.join(cfg.CHECKPOINT.DIR, LOG_SUBFOLDER)
    cfg.SLURM.LOG_FOLDER = os.path.abspath(cfg.SLURM.LOG_FOLDER)
    check_data_before_submission(cfg)
    request = SlurmRequest.from_config(cfg)
    check_request_fits(request, Partition.read(request.partition))
    if not cfg.SLURM.get(NODE_LOCAL_DATA, False):
        warn_about_nce_on_a_small_dataset(cfg)
    os.makedirs(cfg.SLURM.LOG_FOLDER, exist_ok=True)
    executor = submitit.AutoExecutor(folder=cfg.SLURM.LOG_FOLDER, cluster="slurm")
    executor.update_parameters(**request.executor_parameters(cfg.SLURM))
    try:
        job = executor.submit(PirlSlurmJob(engine_name, cfg, hook_generator))
    except FailedJobError as error:
        raise ValueError(f"sbatch refused the job ({request.describe()}): {error}") from error
    print(following_instructions(job.job_id, request, job.paths.stdout, job.paths.stderr,
                                 cfg.CHECKPOINT.DIR))
    return job


def following_instructions(job_id: str, request: SlurmRequest, stdout: os.PathLike,
                           stderr: os.PathLike, checkpoint_dir: str) -> str:
    """What the launcher prints after submitting: the job, where its logs are, how to follow."""
    return "\n".join([
        f"SUBMITTED: {job_id} ({request.describe()})",
        f"  follow it:   squeue -j {job_id}   (PD: pending, with the reason; R: running)",
        f"  its output:  tail -f {stdout}",
        f"  its errors:  {stderr}",
        f"  checkpoints and VISSL's log: {checkpoint_dir} (log.txt, stdout.json)",
        f"  stop it:     scancel {job_id}",
    ])


def check_data_before_submission(cfg: AttrDict) -> None:
    """The data checks that this host can make (``prepare_data``), unless
    ``SLURM.NODE_LOCAL_DATA`` is true; a data path that does not exist here is refused."""
    if cfg.SLURM.get(NODE_LOCAL_DATA, False):
        return
    train = cfg.DATA.TRAIN
    for index, (source, path) in enumerate(zip(train.DATA_SOURCES, train.DATA_PATHS)):
        if source in FILE_SOURCES and not os.path.exists(path):
            raise ValueError(
                f"DATA.TRAIN.DATA_PATHS[{index}]={path!r} does not exist on {socket.gethostname()}, "
                "which submits the job. Point it at the data on a filesystem the nodes share; if "
                "the data is on the compute nodes' own disks only, add "
                f"config.SLURM.{NODE_LOCAL_DATA}=true and the job checks it when it starts.")
    prepare_data(cfg)

"""The SLURM job of the plugin without a cluster (issue 28): its rendezvous port, its hooks, and
the data checks made before submission. tests/test_slurm.py runs it on a real cluster."""
import pytest

from vissl_pirl_plugin.engine import slurm_job
from vissl_pirl_plugin.engine.slurm_job import (
    PORT_RANGE,
    VISSL_DEFAULT_PORT,
    PirlSlurmJob,
    check_data_before_submission,
    rendezvous_port,
)
from vissl_pirl_plugin.hooks.memory_bank_hook import MemoryBankUpdateHook

from conftest import PAPER, compose, write_image_folder

pytestmark = pytest.mark.usefixtures("in_tmp_dir")


def test_each_job_meets_at_a_port_of_its_own_below_the_ephemeral_ports():
    ports = [rendezvous_port(job_id) for job_id in range(1, len(PORT_RANGE) + 1)]
    assert len(set(ports)) == len(PORT_RANGE)  # jobs fewer than 12000 apart never share one
    assert all(20000 <= port < 32000 for port in ports) and VISSL_DEFAULT_PORT not in ports
    assert rendezvous_port(7, configured=29600) == 29600  # a port the user set is kept


def test_the_job_trains_with_the_launchers_hooks_at_its_port(monkeypatch):
    """VISSL's own _ResumableSlurmJob passes default_hook_generator (no bank updates) and
    PORT_ID 40050 to every job."""
    import submitit

    class JobEnvironment:  # submitit's view of a running SLURM job, as the job would see it
        global_rank, hostnames, raw_job_id = 3, ["node-a", "node-b"], "12345"

    seen = {}
    monkeypatch.setattr(submitit, "JobEnvironment", JobEnvironment)
    monkeypatch.setattr(slurm_job.distributed_launcher, "launch_distributed",
                        lambda **kwargs: seen.update(kwargs))
    cfg = compose(PAPER, "config.SLURM.USE_SLURM=true")
    PirlSlurmJob(engine_name="train", config=cfg)()
    assert seen["node_id"] == 3
    assert seen["cfg"].DISTRIBUTED.RUN_ID == f"node-a:{20000 + 12345 % 12000}"
    assert any(isinstance(h, MemoryBankUpdateHook) for h in seen["hook_generator"](cfg))
    resubmission = PirlSlurmJob("train", cfg, hook_generator=len).checkpoint()
    assert isinstance(resubmission.function, PirlSlurmJob)
    assert resubmission.function.hook_generator is len


def test_a_data_path_that_does_not_exist_here_is_refused_unless_the_data_is_node_local(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(ValueError, match=r"DATA_PATHS\[0\]='.*/nowhere' does not exist on \S+, "
                                         r"which submits the job\. .* add "
                                         r"config\.SLURM\.NODE_LOCAL_DATA=true"):
        check_data_before_submission(compose(PAPER, f"config.DATA.TRAIN.DATA_PATHS=[{missing}]"))
    check_data_before_submission(compose(PAPER, f"config.DATA.TRAIN.DATA_PATHS=[{missing}]",
                                         "config.SLURM.NODE_LOCAL_DATA=true"))


def test_the_data_checks_of_a_local_launch_run_before_submission(tmp_path):
    images = write_image_folder(tmp_path / "images", num_images=4)
    cfg = compose(PAPER, f"config.DATA.TRAIN.DATA_PATHS=[{images}]")
    with pytest.raises(ValueError, match="num_negatives=32000 must be smaller than the training "
                                         "dataset, which has 4 images"):
        check_data_before_submission(cfg)
    cfg.LOSS.pirl_loss.num_negatives = 2
    check_data_before_submission(cfg)
    assert list(cfg.DATA.TRAIN.LABEL_PATHS) == [str(images)]  # as prepare_data sets it

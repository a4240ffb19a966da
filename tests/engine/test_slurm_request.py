"""A SLURM request against a partition (issue 28): what VISSL would ask for, and a request that
could never start refused with the keys and values that fit. Partitions of several nodes and
GPUs, which the test cluster (tests/test_slurm.py) does not have, are built here."""
import pytest

from vissl_pirl_plugin.engine.slurm_request import (
    Node,
    Partition,
    SlurmRequest,
    check_request_fits,
    gres_gpus,
    parse_minutes,
)

from conftest import PAPER, compose

pytestmark = pytest.mark.usefixtures("in_tmp_dir")
DGX = Node("dgx", cpus=80, mem_mb=512 * 1024, gpus=8)


def request(*overrides: str) -> SlurmRequest:
    return SlurmRequest.from_config(compose(PAPER, "config.SLURM.PARTITION=gpu", *overrides))


def partition(*nodes: Node, max_time_min=72 * 60, **limits) -> Partition:
    return Partition("gpu", tuple(nodes), max_time_min, limits.get("max_nodes"),
                     limits.get("max_cpus_per_node"), limits.get("max_mem_per_node_mb"))


def test_the_paper_run_asks_for_four_nodes_of_eight_gpus_and_the_cpu_none():
    paper = request("config.SLURM.NUM_CPU_PER_PROC=10", "config.SLURM.MEM_GB=480")
    assert (paper.nodes, paper.cpus_per_node, paper.mem_gb, paper.gpus_per_node, paper.time_min) \
        == (4, 80, 480, 8, 72 * 60)
    assert paper.executor_parameters(compose(PAPER).SLURM)["gpus_per_node"] == 8
    check_request_fits(paper, partition(*[DGX] * 4))
    cpu = request("config.MACHINE.DEVICE=cpu")
    assert cpu.gpus_per_node == 0  # VISSL asked for NUM_PROC_PER_NODE GPUs: sbatch refused
    assert "gpus_per_node" not in cpu.executor_parameters(compose(PAPER).SLURM)


def test_vissls_defaults_on_a_small_node_name_every_key_and_the_value_that_fits():
    small = partition(Node("vm", cpus=2, mem_mb=24105, gpus=0), max_time_min=60)
    with pytest.raises(ValueError) as refused:
        check_request_fits(request("config.MACHINE.DEVICE=cpu", "config.DISTRIBUTED.NUM_NODES=1",
                                   "config.DISTRIBUTED.NUM_PROC_PER_NODE=2"), small)
    message = str(refused.value)
    assert "\n" not in message and message.startswith("This SLURM job could never start")
    assert ("config.SLURM.TIME_HOURS and TIME_MINUTES ask for 72 h 0 min but partition gpu "
            "allows 1 h 0 min: set config.SLURM.TIME_HOURS=1 config.SLURM.TIME_MINUTES=0") in message
    assert ("config.SLURM.NUM_CPU_PER_PROC=8 asks for 16 CPUs per node (2 processes) but "
            "partition gpu's nodes have 2: set config.SLURM.NUM_CPU_PER_PROC=1") in message
    assert "config.SLURM.MEM_GB=250 but partition gpu's nodes have 23 GB: set config.SLURM.MEM_GB=23" \
        in message
    check_request_fits(request("config.MACHINE.DEVICE=cpu", "config.DISTRIBUTED.NUM_NODES=1",
                               "config.DISTRIBUTED.NUM_PROC_PER_NODE=2",
                               "config.SLURM.NUM_CPU_PER_PROC=1", "config.SLURM.MEM_GB=23",
                               "config.SLURM.TIME_HOURS=1"), small)


@pytest.mark.parametrize("nodes, overrides, problem", [
    ([DGX] * 3, [], "config.DISTRIBUTED.NUM_NODES=4 but partition gpu has 3 node(s) for a job: "
                    "set config.DISTRIBUTED.NUM_NODES=3"),
    ([DGX] * 3 + [Node("half", 80, 512 * 1024, 4)], [],
     "config.DISTRIBUTED.NUM_PROC_PER_NODE=8 asks for 8 GPUs per node but partition gpu's nodes "
     "have 4: set config.DISTRIBUTED.NUM_PROC_PER_NODE=4"),
    ([DGX] * 4, ["config.SLURM.NUM_CPU_PER_PROC=12"],
     "config.SLURM.NUM_CPU_PER_PROC=12 asks for 96 CPUs per node (8 processes) but partition "
     "gpu's nodes have 80: set config.SLURM.NUM_CPU_PER_PROC=10"),
    ([Node("cpu-only", 256, 1024 * 1024, 0)] * 4, [],
     "asks for 8 GPUs per node but partition gpu's nodes have 0: set config.MACHINE.DEVICE=cpu"),
    # CPUs on two nodes, memory on two others: each fits alone, no 4 nodes have both
    ([Node("a", 80, 128 * 1024, 8)] * 2 + [Node("b", 40, 512 * 1024, 8)] * 2 + [DGX] * 2,
     ["config.SLURM.NUM_CPU_PER_PROC=6", "config.SLURM.MEM_GB=200"],
     "fewer than 4 node(s) of partition gpu have all of them at once"),
])
def test_a_multi_node_gpu_request_that_no_nodes_can_give_is_refused(nodes, overrides, problem):
    with pytest.raises(ValueError, match="could never start") as refused:
        check_request_fits(request("config.SLURM.MEM_GB=480", *overrides), partition(*nodes))
    assert problem in str(refused.value)


def test_partition_limits_count_and_additional_parameters_are_left_to_sbatch():
    limited = partition(*[DGX] * 4, max_cpus_per_node=64, max_mem_per_node_mb=400 * 1024)
    with pytest.raises(ValueError) as refused:
        check_request_fits(request("config.SLURM.MEM_GB=480"), limited)
    assert "nodes have 64: set config.SLURM.NUM_CPU_PER_PROC=8" not in str(refused.value)  # 8*8=64 fits
    assert "set config.SLURM.MEM_GB=400" in str(refused.value)
    check_request_fits(request("config.SLURM.MEM_GB=480", "+config.SLURM.ADDITIONAL_PARAMETERS.mem=0"),
                       limited)  # sbatch's own --mem replaces MEM_GB: not checked here


@pytest.mark.parametrize("text, minutes", [("UNLIMITED", None), ("1:00:00", 60), ("01:00:00", 60),
                                           ("30:00", 30), ("2-00:00:00", 2880), ("45", 45),
                                           ("0:00:30", 1), ("infinite", None)])
def test_slurm_times(text, minutes):
    assert parse_minutes(text) == minutes


@pytest.mark.parametrize("gres, gpus", [("(null)", 0), ("gpu:8", 8), ("gpu:a100:4(S:0-1)", 4),
                                        ("gpu:v100:2,gpu:a100:2", 4), ("shard:8,gpu:4", 4)])
def test_gpus_of_a_nodes_gres(gres, gpus):
    assert gres_gpus(gres) == gpus

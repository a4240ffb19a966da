"""What a SLURM launch asks of the cluster, checked against the partition before submission.

VISSL 0.1.6 submits ``NUM_NODES`` nodes, each with ``NUM_CPU_PER_PROC`` x ``NUM_PROC_PER_NODE``
CPUs, ``MEM_GB`` of memory, ``NUM_PROC_PER_NODE`` GPUs (even with ``MACHINE.DEVICE=cpu``, which a
cluster without GPUs refuses) and ``TIME_HOURS``:``TIME_MINUTES``. ``SlurmRequest`` is that
request, with no GPU on the CPU. A request larger than every node of the partition, or longer
than its time limit, is not always refused by ``sbatch``: it may pend forever
(``Reason=PartitionConfig``). ``check_request_fits`` compares the request with what ``sinfo`` and
``scontrol`` say of the partition and raises one ``ValueError`` naming each key that cannot be
met and the largest value that fits.

Not checked: ``SLURM.CONSTRAINT`` (node features), account and QOS limits, and resources that
``SLURM.ADDITIONAL_PARAMETERS`` sets itself (``mem``, ``gres``, ...): ``sbatch`` sees those.
"""
import re
import shutil
import subprocess
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from vissl.config import AttrDict

# ADDITIONAL_PARAMETERS keys that replace a resource of the request (sbatch's spelling, "-" or "_")
OVERRIDING_PARAMETERS = {
    "cpus": ("cpus_per_task", "cpus_per_gpu", "ntasks_per_node", "ntasks"),
    "mem": ("mem", "mem_per_cpu", "mem_per_gpu"),
    "gpus": ("gpus_per_node", "gpus", "gres", "gpus_per_task"),
    "time": ("time",),
    "nodes": ("nodes",),
}
UNLIMITED = ("UNLIMITED", "INFINITE", "NONE")
SLURM_TIMEOUT_S = 60


@dataclass(frozen=True)
class SlurmRequest:
    """One SLURM job of ``nodes`` nodes, each running one task that starts
    ``processes_per_node`` training processes."""

    partition: str
    nodes: int
    processes_per_node: int
    cpus_per_node: int
    mem_gb: int
    gpus_per_node: int
    time_min: int
    overridden: Tuple[str, ...] = ()  # resources that ADDITIONAL_PARAMETERS sets itself

    @classmethod
    def from_config(cls, cfg: AttrDict) -> "SlurmRequest":
        slurm, distributed = cfg.SLURM, cfg.DISTRIBUTED
        extra = {key.replace("-", "_") for key in slurm.ADDITIONAL_PARAMETERS}
        return cls(
            partition=slurm.PARTITION,
            nodes=distributed.NUM_NODES,
            processes_per_node=distributed.NUM_PROC_PER_NODE,
            cpus_per_node=slurm.NUM_CPU_PER_PROC * distributed.NUM_PROC_PER_NODE,
            mem_gb=slurm.MEM_GB,
            gpus_per_node=distributed.NUM_PROC_PER_NODE if cfg.MACHINE.DEVICE == "gpu" else 0,
            time_min=slurm.TIME_HOURS * 60 + slurm.TIME_MINUTES,
            overridden=tuple(resource for resource, keys in OVERRIDING_PARAMETERS.items()
                             if extra & set(keys)))

    def checks(self, resource: str) -> bool:
        """Whether ``resource`` (a key of ``OVERRIDING_PARAMETERS``) is checked: it is, unless
        ``ADDITIONAL_PARAMETERS`` sets it."""
        return resource not in self.overridden

    def executor_parameters(self, slurm: AttrDict) -> Dict[str, object]:
        """``submitit.AutoExecutor.update_parameters`` arguments: VISSL's, without GPUs on the
        CPU (VISSL always asks for ``gpus_per_node``)."""
        parameters = dict(
            name=slurm.NAME, slurm_comment=slurm.COMMENT, slurm_partition=self.partition,
            slurm_constraint=slurm.CONSTRAINT, timeout_min=self.time_min, nodes=self.nodes,
            cpus_per_task=self.cpus_per_node, tasks_per_node=1, mem_gb=self.mem_gb,
            slurm_additional_parameters=dict(slurm.ADDITIONAL_PARAMETERS))
        if self.gpus_per_node > 0:
            parameters["gpus_per_node"] = self.gpus_per_node
        return parameters

    def describe(self) -> str:
        """The request in a few words, for the launcher's messages."""
        gpus = f"{self.gpus_per_node} GPUs" if self.gpus_per_node else "no GPU"
        return (f"partition {self.partition}: {self.nodes} node(s) x {self.processes_per_node} "
                f"process(es), {self.cpus_per_node} CPUs, {self.mem_gb} GB, {gpus} per node, "
                f"{format_minutes(self.time_min)}")


@dataclass(frozen=True)
class Node:
    """One node of a partition: its CPUs, memory (``RealMemory``, MB) and GPUs (gres)."""

    name: str
    cpus: int
    mem_mb: int
    gpus: int


@dataclass(frozen=True)
class Partition:
    """A partition as ``scontrol show partition`` and ``sinfo -N`` report it."""

    name: str
    nodes: Tuple[Node, ...]
    max_time_min: Optional[int]  # None: unlimited
    max_nodes: Optional[int]
    max_cpus_per_node: Optional[int]
    max_mem_per_node_mb: Optional[int]

    @classmethod
    def read(cls, name: str) -> "Partition":
        """Asks the cluster; a partition that does not exist is a ``ValueError`` naming those
        that do."""
        if not name:
            raise ValueError("config.SLURM.PARTITION is not set: set it to one of this cluster's "
                             f"partitions, {', '.join(partition_names())} (* marks the default).")
        fields = _fields(_slurm_command(["scontrol", "show", "partition", name, "--oneliner"],
                                        missing_ok=True))
        if fields.get("PartitionName") != name:
            raise ValueError(f"config.SLURM.PARTITION={name!r} is not a partition of this cluster: "
                             f"set it to one of {', '.join(partition_names())} (* marks the default).")
        nodes = []
        for line in _slurm_command(["sinfo", "--noheader", "--Node", "--partition", name,
                                    "--format=%N|%c|%m|%G"]).splitlines():
            node, cpus, mem_mb, gres = line.strip().split("|")
            nodes.append(Node(node, int(cpus.rstrip("+")), int(mem_mb.rstrip("+")), gres_gpus(gres)))
        return cls(name=name, nodes=tuple(nodes),
                   max_time_min=parse_minutes(fields.get("MaxTime", "UNLIMITED")),
                   max_nodes=_limit(fields.get("MaxNodes", "UNLIMITED")),
                   max_cpus_per_node=_limit(fields.get("MaxCPUsPerNode", "UNLIMITED")),
                   max_mem_per_node_mb=_limit(fields.get("MaxMemPerNode", "UNLIMITED")))

    def usable(self, resource: str) -> List[int]:
        """Per node, the most of ``resource`` (cpus, mem_gb, gpus) that a job may ask for."""
        if resource == "cpus":
            return [min(node.cpus, self.max_cpus_per_node or node.cpus) for node in self.nodes]
        if resource == "mem_gb":
            return [min(node.mem_mb, self.max_mem_per_node_mb or node.mem_mb) // 1024
                    for node in self.nodes]
        return [node.gpus for node in self.nodes]


def check_request_fits(request: SlurmRequest, partition: Partition) -> None:
    """Raises one ``ValueError`` if ``request`` can never start on ``partition``: each key
    that asks too much, with the most that ``request.nodes`` of its nodes can give."""
    problems = []
    nodes = min(len(partition.nodes), partition.max_nodes or len(partition.nodes))
    if request.checks("nodes") and request.nodes > nodes:
        problems.append(f"config.DISTRIBUTED.NUM_NODES={request.nodes} but partition "
                        f"{partition.name} has {nodes} node(s) for a job: set "
                        f"config.DISTRIBUTED.NUM_NODES={nodes}")
    if request.checks("time") and partition.max_time_min is not None \
            and request.time_min > partition.max_time_min:
        hours, minutes = divmod(partition.max_time_min, 60)
        problems.append(f"config.SLURM.TIME_HOURS and TIME_MINUTES ask for "
                        f"{format_minutes(request.time_min)} but partition {partition.name} allows "
                        f"{format_minutes(partition.max_time_min)}: set config.SLURM.TIME_HOURS="
                        f"{hours} config.SLURM.TIME_MINUTES={minutes} (a longer run is requeued at "
                        "the limit and resumes from its checkpoint)")
    # the most of each resource that request.nodes nodes give: the nodes-th largest node's
    fits = {resource: (sorted(partition.usable(resource), reverse=True)[:max(1, request.nodes)]
                       or [0])[-1] for resource in ("cpus", "mem_gb", "gpus")}
    processes = request.processes_per_node
    if request.checks("cpus") and request.cpus_per_node > fits["cpus"]:
        per_process = fits["cpus"] // processes
        problems.append(
            f"config.SLURM.NUM_CPU_PER_PROC={request.cpus_per_node // processes} asks for "
            f"{request.cpus_per_node} CPUs per node ({processes} processes) but partition "
            f"{partition.name}'s nodes have {fits['cpus']}: set "
            + (f"config.SLURM.NUM_CPU_PER_PROC={per_process}" if per_process else
               f"config.DISTRIBUTED.NUM_PROC_PER_NODE={fits['cpus']} config.SLURM.NUM_CPU_PER_PROC=1"))
    if request.checks("mem") and request.mem_gb > fits["mem_gb"]:
        problems.append(f"config.SLURM.MEM_GB={request.mem_gb} but partition {partition.name}'s "
                        f"nodes have {fits['mem_gb']} GB: set config.SLURM.MEM_GB={fits['mem_gb']}")
    if request.checks("gpus") and request.gpus_per_node > fits["gpus"]:
        problems.append(
            f"config.DISTRIBUTED.NUM_PROC_PER_NODE={processes} asks for {processes} GPUs per "
            f"node but partition {partition.name}'s nodes have {fits['gpus']}: set "
            + (f"config.DISTRIBUTED.NUM_PROC_PER_NODE={fits['gpus']}" if fits["gpus"]
               else "config.MACHINE.DEVICE=cpu, or choose a partition with GPUs"))
    if not problems and len(_nodes_with_all(request, partition)) < request.nodes:
        problems.append(f"each resource fits some node, but fewer than {request.nodes} node(s) of "
                        f"partition {partition.name} have all of them at once ("
                        + ", ".join(f"{node.name}: {node.cpus} CPUs, {node.mem_mb // 1024} GB, "
                                    f"{node.gpus} GPUs" for node in partition.nodes)
                        + "): lower config.SLURM.NUM_CPU_PER_PROC or config.SLURM.MEM_GB")
    if problems:
        raise ValueError(f"This SLURM job could never start ({request.describe()}): "
                         + "; ".join(problems) + ".")


def _nodes_with_all(request: SlurmRequest, partition: Partition) -> List[str]:
    """The nodes of ``partition`` that can give every checked resource of ``request``."""
    asked = {"cpus": request.cpus_per_node, "mem_gb": request.mem_gb, "gpus": request.gpus_per_node}
    usable = {resource: partition.usable(resource) for resource in asked}
    return [node.name for index, node in enumerate(partition.nodes)
            if all(not request.checks(resource.split("_")[0]) or usable[resource][index] >= amount
                   for resource, amount in asked.items())]


def partition_names() -> List[str]:
    """The cluster's partitions, the default one marked ``*`` as ``sinfo`` does."""
    names = _slurm_command(["sinfo", "--noheader", "--format=%P"]).split()
    return list(dict.fromkeys(names))


def gres_gpus(gres: str) -> int:
    """GPUs in ``sinfo``'s ``%G`` (``gpu:8``, ``gpu:a100:4(S:0-1),shard:8``, ``(null)``)."""
    total = 0
    for item in gres.split(","):
        parts = re.sub(r"\(.*?\)", "", item).split(":")
        if parts[0] == "gpu" and len(parts) > 1 and parts[-1].isdigit():
            total += int(parts[-1])
    return total


def parse_minutes(text: str) -> Optional[int]:
    """Minutes of a SLURM time (``[days-]hours:minutes:seconds``, ``minutes:seconds``,
    ``minutes``); None for ``UNLIMITED``. Seconds are rounded up."""
    if text.upper() in UNLIMITED:
        return None
    days, _, clock = text.rpartition("-")
    parts = [int(part) for part in clock.split(":")]
    seconds = {1: lambda: parts[0] * 60, 2: lambda: parts[0] * 60 + parts[1],
               3: lambda: (parts[0] * 60 + parts[1]) * 60 + parts[2]}[len(parts)]()
    return (int(days or 0) * 86400 + seconds + 59) // 60


def format_minutes(minutes: int) -> str:
    """``90`` as ``1 h 30 min``."""
    hours, rest = divmod(minutes, 60)
    return f"{hours} h {rest} min"


def _limit(text: str) -> Optional[int]:
    return None if text.upper() in UNLIMITED else int(text)


def _fields(oneliner: str) -> Dict[str, str]:
    return dict(field.split("=", 1) for field in oneliner.split() if "=" in field)


def _slurm_command(command: List[str], missing_ok: bool = False) -> str:
    """The output of a SLURM client command; its absence or failure is a one-line error."""
    if shutil.which(command[0]) is None:
        raise ValueError(f"config.SLURM.USE_SLURM=true but {command[0]} is not on the PATH: "
                         "submit from a SLURM login node (where sbatch, sinfo and squeue run).")
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=SLURM_TIMEOUT_S)
    except subprocess.TimeoutExpired as error:
        raise ValueError(f"`{' '.join(command)}` did not answer in {SLURM_TIMEOUT_S} s: is the SLURM "
                         "controller reachable from this host?") from error
    if result.returncode != 0 and not missing_ok:
        raise ValueError(f"`{' '.join(command)}` failed: {result.stderr.strip()} Is the SLURM "
                         "controller reachable from this host?")
    return result.stdout

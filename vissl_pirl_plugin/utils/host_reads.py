"""Finding host reads of tensor values on the CPU, where CUDA's sync check cannot run.

On CUDA, ``torch.cuda.set_sync_debug_mode("error")`` makes every host-device synchronisation
raise. A CPU tensor never synchronises, so that check is blind on a machine without a GPU.
``HostReadDetector`` sees the same reads there: the operations that, on a device tensor, must
wait for the device and copy a value to the host before Python can go on:

* ``Tensor.item``, ``tolist``, ``numpy``, ``cpu``, ``bool``/``int``/``float``/``index`` of a
  tensor (``if t:``, ``range(t)``, indexing with a 0-d tensor) and ``torch.equal``, seen as
  torch functions;
* the operators whose output size depends on the data (``nonzero``, ``masked_select``,
  ``unique``, indexing or assigning through a boolean mask, ``bincount``, ``repeat_interleave``
  without an output size) and ``_local_scalar_dense``, seen as dispatched operators.

Each read is recorded with the innermost frame of the plugin that caused it (``file:line``).
What it cannot see, every tensor being on the CPU here: a blocking copy written as
``.to(device)`` or ``torch.tensor(data, device=device)`` (the device is the CPU), and explicit
``synchronize`` calls; ``tests/gpu`` runs the step under CUDA's own check for those.
Only reads of tensors that would live on the device count: every tensor here is on the CPU,
so the caller states which reads are of host-resident values (``allowed``: functions whose
reads are of host memory anyway, ``HOST_RESIDENT_READS`` for the training step).
"""
import traceback
from pathlib import Path
from typing import Iterable, List, Optional

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

PLUGIN = Path(__file__).resolve().parents[1]
# the plugin functions of the per-step path whose reads are of host memory, and why
HOST_RESIDENT_READS = {
    "finish_agreement": "reads the failure table that start_agreement copied into pinned host "
                        "memory a step earlier (utils/distributed_checks.py)",
}
READING_METHODS = {"item", "tolist", "numpy", "cpu", "equal", "__bool__", "__int__", "__float__",
                   "__index__"}
DATA_DEPENDENT_OPS = {"nonzero", "masked_select", "unique", "_unique", "_unique2",
                      "unique_consecutive", "unique_dim", "bincount", "_local_scalar_dense", "argwhere"}


def _site() -> Optional[traceback.FrameSummary]:
    """The innermost frame inside the plugin, or None when the read is outside it."""
    frames = [frame for frame in traceback.extract_stack()
              if Path(frame.filename).resolve().is_relative_to(PLUGIN)
              and Path(frame.filename).resolve() != Path(__file__).resolve()]
    return frames[-1] if frames else None


class _ReadingMethods(TorchFunctionMode):
    def __init__(self, detector: "HostReadDetector") -> None:
        super().__init__()
        self.detector = detector

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        if name in READING_METHODS:
            self.detector.note(name)
        return func(*args, **(kwargs or {}))


class _DataDependentOps(TorchDispatchMode):
    def __init__(self, detector: "HostReadDetector") -> None:
        super().__init__()
        self.detector = detector

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        if name in DATA_DEPENDENT_OPS:
            self.detector.note(name)
        elif name in ("index", "index_put", "index_put_", "_index_put_impl_") and any(
                isinstance(index, torch.Tensor) and index.dtype == torch.bool
                for index in (args[1] if len(args) > 1 else []) or []):
            self.detector.note(f"{name} with a boolean mask")
        elif name == "repeat_interleave" and (kwargs or {}).get("output_size") is None:
            self.detector.note(name)
        return func(*args, **(kwargs or {}))


class HostReadDetector:
    """``with HostReadDetector() as reads: ...`` records every host read inside the block.

    Args:
        allowed: names of plugin functions whose reads are of values that live on the host
            anyway (they are recorded in ``allowed_reads``, not ``reads``).
    """

    def __init__(self, allowed: Iterable[str] = ()) -> None:
        self.allowed = set(allowed)
        self.reads: List[str] = []
        self.allowed_reads: List[str] = []
        self._modes = [_ReadingMethods(self), _DataDependentOps(self)]

    def note(self, what: str) -> None:
        site = _site()
        if site is None:
            return
        where = f"{Path(site.filename).resolve().relative_to(PLUGIN.parent)}:{site.lineno}"
        (self.allowed_reads if site.name in self.allowed else self.reads).append(
            f"{what} in {site.name} at {where}")

    def __enter__(self) -> "HostReadDetector":
        for mode in self._modes:
            mode.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        for mode in reversed(self._modes):
            mode.__exit__(*exc)

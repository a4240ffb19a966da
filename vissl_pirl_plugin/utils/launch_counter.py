"""Counting the kernel launches of a block of code, on any device (issue 26: a step the GPU never
waits for).

On a GPU every eager PyTorch operator costs the host about 5 to 10 us to launch, whatever the
tensor's size; how many a step launches does not depend on the device, so it is counted here on
the CPU. ``LaunchCounter`` is a ``TorchDispatchMode`` that tallies every aten operator that runs
a kernel, per operator:

* not counted: views and other operators that only make new tensor metadata (their schema's
  outputs alias their inputs, as ``view``, ``expand``, ``permute``, ``select``, ``slice``,
  ``transpose``, ``unsqueeze``, ``squeeze``, ``as_strided``, ``alias``, ``detach``,
  ``unbind``, ``split``; the in-place ones tagged ``inplace_view``; ``_unsafe_view``),
  allocations (``empty``, ``empty_strided``, ...) and queries (``sym_size``,
  ``is_contiguous``, ``record_stream``, ...). ``reshape`` and ``contiguous`` count only when
  they copy: they reach the mode as a view or as a ``clone``;
* counted once: every other operator, including copies (``_to_copy``, ``copy_``, ``clone``),
  random draws and reductions. A multi-tensor ``_foreach_*`` operator counts once, although
  CUDA may split a long list over a few launches.

A compiled region (``torch.compile`` with inductor) runs compiled under the counter (the mode
says ``ignore_compile_internals``): the operators its wrapper still calls through the
dispatcher (``extern_kernels.bmm``, fallbacks such as ``sort``) are counted as above, and every
call of an inductor-compiled graph adds inductor's own count of the kernels it generated for that
graph (``metrics_deltas.generated_kernel_count``, kept with the graph, cache hits included),
tallied as ``inductor``: inductor's wrapper is straight-line code that calls each of them once.
On CUDA these are Triton kernels, each its own launch; on the CPU they are loop nests, which
inductor groups into fewer C++ functions (so the CPU calls fewer): the count stands for the
GPU's (Triton's fusion choices may differ a little from the CPU backend's).
Not modelled: CUDA graphs (``mode="reduce-overhead"``), where the host launches one graph
instead. The compile itself, at a region's first call, is not counted.
"""
from collections import Counter
from typing import Callable, List, Optional

import torch
from torch.utils._python_dispatch import TorchDispatchMode

# operators that allocate or read metadata and launch nothing
NO_KERNEL = {
    "_unsafe_view", "empty", "empty_like", "empty_strided", "empty_permuted", "new_empty",
    "new_empty_strided", "resize_", "set_", "sym_size", "sym_stride", "sym_numel",
    "sym_storage_offset", "is_contiguous", "is_strides_like_format",
    "is_non_overlapping_and_dense", "is_same_size", "record_stream", "dim", "size", "stride",
    "numel", "storage_offset",
}
_ACTIVE: List["LaunchCounter"] = []
_ORIGINAL_CALL: Optional[Callable] = None


def launches_a_kernel(func: torch._ops.OpOverload) -> bool:
    """Whether the dispatched operator ``func`` runs a kernel (see the module's docstring)."""
    if func.is_view or torch.Tag.inplace_view in func.tags:
        return False
    return func.overloadpacket.__name__ not in NO_KERNEL


class LaunchCounter(TorchDispatchMode):
    """``with LaunchCounter() as launches: ...`` counts the kernel launches of the block:
    ``launches.total``, and ``launches.by_op`` (a ``Counter`` by operator name, the kernels of
    compiled regions as ``inductor``). Counters nest: each counts the whole of its own block."""

    def __init__(self) -> None:
        super().__init__()
        self.by_op: Counter = Counter()

    @classmethod
    def ignore_compile_internals(cls) -> bool:
        """Compiled regions run compiled; their kernels are counted by inductor's own count."""
        return True

    @property
    def total(self) -> int:
        return sum(self.by_op.values())

    @property
    def compiled(self) -> int:
        """The launches of inductor-generated kernels among ``total``."""
        return self.by_op["inductor"]

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if launches_a_kernel(func):
            self.by_op[f"{func.namespace}.{func.overloadpacket.__name__}"] += 1
        return func(*args, **(kwargs or {}))

    def __enter__(self) -> "LaunchCounter":
        if not _ACTIVE:
            _count_compiled_graphs(True)
        _ACTIVE.append(self)
        return super().__enter__()

    def __exit__(self, *exc) -> None:
        super().__exit__(*exc)
        _ACTIVE.remove(self)
        if not _ACTIVE:
            _count_compiled_graphs(False)


def _count_compiled_graphs(on: bool) -> None:
    """Wraps (or unwraps) the call of every inductor-compiled graph, while a counter is active."""
    global _ORIGINAL_CALL
    from torch._inductor.output_code import CompiledFxGraph  # imports inductor (about 1.5 s, once)

    if on:
        _ORIGINAL_CALL = CompiledFxGraph.__call__
        original = _ORIGINAL_CALL

        def counted(graph, inputs):
            for counter in _ACTIVE:
                counter.by_op["inductor"] += graph.metrics_deltas.generated_kernel_count
            return original(graph, inputs)
        CompiledFxGraph.__call__ = counted
    else:
        CompiledFxGraph.__call__ = _ORIGINAL_CALL

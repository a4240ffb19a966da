"""Loading checkpoints without running code from them.

A ``torch.load(..., weights_only=False)`` unpickles whatever the file names, and a pickle can
name any function: a checkpoint downloaded from a model zoo could run code on the user's
machine. Every load in the plugin goes through ``load_checkpoint_safely``, i.e.
``weights_only=True``: tensors, numbers, strings and plain containers only. That is all VISSL
0.1.6 writes (model, optimizer, loss and memory-bank states, AMP scaler, iteration counters;
``tests/hooks/test_checkpoint_pruning.py`` loads those of a real run this way), so no type needs
to be allowed with ``torch.serialization.add_safe_globals``. VISSL's own resume
(``classy_vision.generic.util.load_checkpoint``) calls ``torch.load`` without the argument,
which is ``weights_only=True`` since PyTorch 2.6.
"""
import os
import pickle
import re
from typing import Any, Dict, Union

import torch

WEIGHTS_ONLY_FAILURE = "Weights only load failed"


class UnsafeCheckpointError(ValueError):
    """The file holds objects whose unpickling could run code; it was not loaded."""


def load_checkpoint_safely(path: Union[str, os.PathLike], mmap: bool = False) -> Dict[str, Any]:
    """``torch.load(path, map_location="cpu", weights_only=True)``; a file that needs more is
    refused with an ``UnsafeCheckpointError`` naming what it holds and how to proceed."""
    try:
        return torch.load(path, map_location="cpu", mmap=mmap, weights_only=True)
    except pickle.UnpicklingError as error:
        found = re.findall(r"Unsupported global: GLOBAL (\S+)", str(error))
        if WEIGHTS_ONLY_FAILURE not in str(error) or not found:
            raise  # not a pickle of objects at all: the caller says it is no checkpoint
        raise UnsafeCheckpointError(
            f"{path} was not loaded: it holds a reference to {found[0]}, not only tensors, "
            "numbers and plain containers, and unpickling it could run arbitrary code. "
            "Checkpoints written by VISSL and this plugin never do. If you trust the file's "
            "source, convert it once in Python: torch.load(path, weights_only=False), keep the "
            "tensors and plain containers you need, torch.save them to a new file and use that "
            "file (or allow the type with torch.serialization.add_safe_globals).") from None

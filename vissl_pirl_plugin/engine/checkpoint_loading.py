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

from vissl_pirl_plugin.utils.user_errors import InvalidInputError, MissingInputError

WEIGHTS_ONLY_FAILURE = "Weights only load failed"
# how torch names a global it refused: "Unsupported global: GLOBAL builtins.exec", "Trying to
# load unsupported GLOBAL posix.system whose module posix is blocked"
REFUSED_GLOBAL = re.compile(r"unsupported global:? GLOBAL (\S+)", re.IGNORECASE)


class UnsafeCheckpointError(InvalidInputError):
    """The file holds objects whose unpickling could run code; it was not loaded."""


class NotACheckpointError(InvalidInputError):
    """The file is not a checkpoint that ``torch.save`` wrote."""


def load_checkpoint_safely(path: Union[str, os.PathLike], mmap: bool = False) -> Dict[str, Any]:
    """``torch.load(path, map_location="cpu", weights_only=True)``. Each way it can fail is
    reported in one line that says what is wrong and what to do, without torch's advice to
    re-run with ``weights_only=False``: a missing file (``FileNotFoundError``), a file that would
    run code (``UnsafeCheckpointError``), a file that is no torch checkpoint
    (``NotACheckpointError``)."""
    if not os.path.isfile(path):
        raise MissingInputError(
            f"Checkpoint {path} does not exist. Pass a file that VISSL wrote into the run's "
            "CHECKPOINT.DIR: checkpoint.torch (the newest) or model_final_checkpoint_phase*.torch.")
    try:
        return torch.load(path, map_location="cpu", mmap=mmap, weights_only=True)
    except pickle.UnpicklingError as error:
        found = REFUSED_GLOBAL.search(str(error))
        if WEIGHTS_ONLY_FAILURE in str(error) and found:
            raise UnsafeCheckpointError(
                f"{path} was not loaded: it holds a reference to {found.group(1)}, not only "
                "tensors, numbers and plain containers, and unpickling it could run arbitrary "
                "code. Checkpoints written by VISSL and this plugin never do. If you trust the "
                "file's source, convert it once in Python: torch.load(path, weights_only=False), "
                "keep the tensors and plain containers you need, torch.save them to a new file "
                "and use that file (or allow the type with "
                "torch.serialization.add_safe_globals).") from None
        raise _not_a_checkpoint(path, error) from None
    except (RuntimeError, EOFError, ValueError) as error:  # not a zip, truncated, empty
        raise _not_a_checkpoint(path, error) from None


def _not_a_checkpoint(path: Union[str, os.PathLike], error: Exception) -> NotACheckpointError:
    """What torch said, less its generic advice, in one line."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    reason = next((line for line in lines if line.startswith("Unsupported operand")),
                  lines[0] if lines and WEIGHTS_ONLY_FAILURE not in lines[0] else
                  type(error).__name__)
    return NotACheckpointError(
        f"{path} is not a checkpoint that torch.save wrote ({reason[:200]}). Pass a file that "
        "VISSL wrote into the run's CHECKPOINT.DIR: checkpoint.torch or "
        "model_final_checkpoint_phase*.torch.")

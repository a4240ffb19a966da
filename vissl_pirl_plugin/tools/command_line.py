"""How the plugin's command-line tools answer a user's mistake: one line, no traceback.

A missing checkpoint, a run folder without ``train_config.yaml``, a file that is no checkpoint,
a checkpoint that would run code, a failed check before a launch: the plugin raises these as
``UserInputError`` (``vissl_pirl_plugin/utils/user_errors.py``) with a message that says what is wrong
and what to do. A tool prints that message as ``PROG: error: ...`` on stderr and exits with
status 1, as argparse does for a bad option; ``VISSL_PIRL_TRACEBACK=1`` shows the traceback
instead. Any other exception is a bug and keeps its traceback.
"""
import os
import sys
from pathlib import Path
from typing import Callable, List, Optional, Tuple, Type

from vissl_pirl_plugin.utils.user_errors import UserInputError

EXPECTED_ERRORS: Tuple[Type[BaseException], ...] = (UserInputError,)
TRACEBACK_VARIABLE = "VISSL_PIRL_TRACEBACK"


def run_tool(main: Callable[[List[str]], object], argv: Optional[List[str]] = None,
             expected: Tuple[Type[BaseException], ...] = EXPECTED_ERRORS) -> None:
    """Runs ``main(argv)`` (default: the command line); an ``expected`` error exits with one line."""
    try:
        main(sys.argv[1:] if argv is None else argv)
    except expected as error:
        if os.environ.get(TRACEBACK_VARIABLE):
            raise
        message = " ".join(line.strip() for line in str(error).splitlines() if line.strip())
        print(f"{Path(sys.argv[0]).name}: error: {message or type(error).__name__}",
              file=sys.stderr)
        sys.exit(1)

"""Runs one of VISSL's own command-line tools (``tools/NAME.py`` of the VISSL wheel) with the
plugin imported first, so that the plugin's components are registered and VISSL 0.1.6 runs on
today's stack (``vissl_pirl_plugin.utils.vissl_compat``)::

    python -m vissl_pirl_plugin.tools.vissl_tool train_svm config=benchmark/... [overrides]

VISSL's tools do not import the plugin themselves: ``python .venv/.../tools/train_svm.py`` would
fail on numpy 2 and setuptools >= 81, and would not know the plugin's registered names.
"""
import argparse
import importlib.metadata
import runpy
import sys
from pathlib import Path
from typing import Dict, List, Optional


def vissl_tools() -> Dict[str, Path]:
    """The tools the installed VISSL ships (``tools/NAME.py`` among its files), by name.

    Found through VISSL's installed files, wherever it is installed (a venv's site-packages,
    ``pip install --target``, a user site), so this repository's own ``tools/`` folder is never
    taken for VISSL's.
    """
    try:
        distribution = importlib.metadata.distribution("vissl")
    except importlib.metadata.PackageNotFoundError:
        return {}
    return {Path(str(file)).stem: Path(str(distribution.locate_file(file)))
            for file in distribution.files or []
            if file.parent.as_posix() == "tools" and file.suffix == ".py"
            and file.stem != "__init__"}


def main(argv: Optional[List[str]] = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    tools = vissl_tools()
    available = sorted(tools)
    parser = argparse.ArgumentParser(
        description="Runs VISSL's tools/NAME.py with the plugin imported first.", add_help=False)
    parser.add_argument("tool", nargs="?", help=f"one of {available}")
    parser.add_argument("overrides", nargs="*", help="the tool's own arguments (Hydra overrides)")
    if not argv or argv[0] in ("-h", "--help"):
        parser.print_help()
        return
    name, overrides = argv[0], argv[1:]
    if name not in available:
        raise SystemExit(f"{name!r} is not one of VISSL's tools: choose one of {available} "
                         "(VISSL 0.1.6 must be installed: make install).")
    import vissl_pirl_plugin  # noqa: F401  (registers the components and applies vissl_compat)

    sys.argv = [str(tools[name]), *overrides]
    runpy.run_path(str(tools[name]), run_name="__main__")


if __name__ == "__main__":
    main()

"""Runs one of VISSL's own command-line tools (``tools/NAME.py`` of the VISSL wheel) with the
plugin imported first, so that the plugin's components are registered and VISSL 0.1.6 runs on
today's stack (``vissl_pirl_plugin.vissl_compat``)::

    python -m vissl_pirl_plugin.tools.vissl_tool train_svm config=benchmark/... [overrides]

VISSL's tools do not import the plugin themselves: ``python .venv/.../tools/train_svm.py`` would
fail on numpy 2 and setuptools >= 81, and would not know the plugin's registered names.
"""
import argparse
import importlib.util
import runpy
import sys
from pathlib import Path
from typing import List, Optional


def vissl_tools() -> List[str]:
    """The names of the tools the installed VISSL wheel ships."""
    spec = importlib.util.find_spec("tools.run_distributed_engines")
    if spec is None or "site-packages" not in (spec.origin or ""):
        return []
    return sorted(path.stem for path in Path(spec.origin).parent.glob("*.py") if path.stem != "__init__")


def main(argv: Optional[List[str]] = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    available = vissl_tools()
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

    sys.argv = [f"tools/{name}.py", *overrides]
    runpy.run_module(f"tools.{name}", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()

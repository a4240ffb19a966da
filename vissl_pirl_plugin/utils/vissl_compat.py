"""Patches that let VISSL 0.1.6 (released 2021, unmaintained) run on today's stack: Python 3.12 /
3.13, numpy >= 2 and setuptools >= 81. Applied by ``import vissl_pirl_plugin``, before any VISSL
module is imported, so every launch path, worker and tool has them.

Each patch covers named VISSL lines and nothing else, and is idempotent:

1. ``vissl/utils/svm_utils/evaluate.py:43`` and ``vissl/meters/mean_ap_meter.py:70`` use
   ``np.float``, removed in numpy 1.24: those two modules (only) see a numpy whose ``float`` is
   the builtin ``float`` that the alias always stood for.
2. ``vissl/utils/svm_utils/svm_trainer.py:256`` and ``svm_low_shot_trainer.py:176,178`` assign the
   shape-(1,) AP of ``get_precision_recall`` to a matrix element, which numpy >= 2.4 rejects
   ("setting an array element with a sequence"): those two modules (only) get the AP as a 0-d
   array, which stores the same float64 that numpy 1.23 stored.
3. ``vissl/utils/misc.py:16`` and ``vissl/utils/collect_env.py:12`` ``import pkg_resources``,
   which setuptools 81 removed. The lock keeps setuptools 80 (the real ``pkg_resources``, so
   ``import vissl`` works in any order). Where setuptools no longer provides it, those two
   modules (only) are executed with that one line skipped and a stand-in with the two functions
   VISSL calls (``resource_filename``, ``get_distribution``) in their namespace: nothing else
   in the process sees it, and ``import pkg_resources`` still raises ``ImportError`` there.

The patches run when VISSL imports those modules (a post-import hook on exactly those names),
so importing the plugin does not import scikit-learn. Patch 3 needs the plugin imported before
VISSL where setuptools >= 81 is installed.
"""
import importlib.abc
import importlib.machinery
import importlib.metadata
import importlib.util
import os
import sys
import types
from typing import Callable, Dict, Optional, Sequence

import numpy

_PATCHED = "_vissl_pirl_compat_patched"


class _NumpyWithFloatAlias(types.ModuleType):
    """numpy, plus the ``np.float`` alias (the builtin ``float``) that numpy 1.24 removed."""

    float = float

    def __getattr__(self, name: str):
        return getattr(numpy, name)


def _with_float_alias(module: types.ModuleType) -> None:
    module.np = _NumpyWithFloatAlias("numpy")


def _scalar_ap(get_precision_recall: Callable) -> Callable:
    """``get_precision_recall`` returning its shape-(1,) AP as a 0-d array."""

    def get_precision_recall_scalar_ap(*args, **kwargs):
        precision, recall, score, ap = get_precision_recall(*args, **kwargs)
        return precision, recall, score, numpy.asarray(ap).reshape(())

    return get_precision_recall_scalar_ap


def _svm_scalar_ap(module: types.ModuleType) -> None:
    module.get_precision_recall = _scalar_ap(module.get_precision_recall)


# VISSL module -> the patch it needs (1 and 2 of the module docstring)
PKG_RESOURCES_IMPORT = "import pkg_resources\n"
# VISSL modules that import pkg_resources (patch 3)
PKG_RESOURCES_USERS = ("vissl.utils.misc", "vissl.utils.collect_env")

MODULE_PATCHES: Dict[str, Callable[[types.ModuleType], None]] = {
    "vissl.utils.svm_utils.evaluate": _with_float_alias,
    "vissl.meters.mean_ap_meter": _with_float_alias,
    "vissl.utils.svm_utils.svm_trainer": _svm_scalar_ap,
    "vissl.utils.svm_utils.svm_low_shot_trainer": _svm_scalar_ap,
}


def _patch(module: types.ModuleType) -> None:
    if not getattr(module, _PATCHED, False):
        MODULE_PATCHES[module.__name__](module)
        setattr(module, _PATCHED, True)


def pkg_resources_available() -> bool:
    if "pkg_resources" in sys.modules:
        return True
    try:
        return importlib.util.find_spec("pkg_resources") is not None
    except ImportError:
        return False


class _WithoutPkgResourcesLoader(importlib.abc.Loader):
    """Executes a VISSL module with its ``import pkg_resources`` line blanked (the line numbers
    stay) and the stand-in bound to the name ``pkg_resources`` in its namespace (patch 3)."""

    def __init__(self, loader: importlib.machinery.SourceFileLoader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module: types.ModuleType) -> None:
        source = self.loader.get_source(module.__name__)
        if PKG_RESOURCES_IMPORT not in source:
            raise ImportError(f"vissl_compat: {module.__name__} no longer has the line "
                              f"{PKG_RESOURCES_IMPORT.strip()!r} it patches (VISSL 0.1.6 only).")
        source = source.replace(PKG_RESOURCES_IMPORT, "\n", 1)
        module.pkg_resources = pkg_resources_stand_in()
        exec(compile(source, self.loader.get_filename(module.__name__), "exec"), module.__dict__)


class _PatchingLoader(importlib.abc.Loader):
    def __init__(self, loader: importlib.abc.Loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module: types.ModuleType) -> None:
        self.loader.exec_module(module)
        _patch(module)


class _PostImportPatcher(importlib.abc.MetaPathFinder):
    """Patches the modules of ``MODULE_PATCHES`` right after they execute."""

    def find_spec(self, name: str, path: Optional[Sequence[str]], target=None):
        if name in PKG_RESOURCES_USERS and not pkg_resources_available():
            spec = importlib.machinery.PathFinder.find_spec(name, path)
            if spec is not None and isinstance(spec.loader, importlib.machinery.SourceFileLoader):
                spec.loader = _WithoutPkgResourcesLoader(spec.loader)
            return spec
        if name not in MODULE_PATCHES:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _PatchingLoader(spec.loader)
        return spec


class DistributionNotFound(Exception):
    """``pkg_resources.DistributionNotFound``."""


def _resource_filename(package: str, resource: str) -> str:
    spec = importlib.util.find_spec(package)
    if spec is None:
        raise ModuleNotFoundError(f"No package named {package!r}")
    roots = list(spec.submodule_search_locations or [os.path.dirname(spec.origin)])
    for root in roots:
        if os.path.exists(os.path.join(root, resource)):
            return os.path.join(root, resource)
    return os.path.join(roots[0], resource)


def _get_distribution(name: str) -> types.SimpleNamespace:
    try:
        return types.SimpleNamespace(project_name=name, version=importlib.metadata.version(name))
    except importlib.metadata.PackageNotFoundError as error:
        raise DistributionNotFound(name) from error


def pkg_resources_stand_in() -> types.ModuleType:
    """The part of ``pkg_resources`` VISSL uses (patch 3); given to VISSL's modules only."""
    module = types.ModuleType("pkg_resources", "vissl-pirl's stand-in for what VISSL 0.1.6 uses "
                              "of setuptools' removed pkg_resources (vissl_pirl_plugin.utils.vissl_compat)")
    module.resource_filename = _resource_filename
    module.get_distribution = _get_distribution
    module.DistributionNotFound = DistributionNotFound
    return module


def apply() -> None:
    """Applies the patches; idempotent."""
    if not any(isinstance(finder, _PostImportPatcher) for finder in sys.meta_path):
        sys.meta_path.insert(0, _PostImportPatcher())
    for name in MODULE_PATCHES:
        if name in sys.modules:
            _patch(sys.modules[name])

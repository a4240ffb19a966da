"""Quiets the warnings that third-party packages print when the plugin imports or sets them up,
which a user cannot act on; the one place where the plugin silences warnings.

Every command printed four of them before its first line. Each filter names the third-party
module the warning is attributed to, so no warning of the plugin's own is ever silenced, nor
one that the user's code raises (torchvision's two deprecations are raised by those private
torchvision modules themselves, whoever imports them):

* torchvision's ``_functional_video`` and ``_transforms_video`` deprecations, raised when
  classy_vision's video transforms import them;
* setuptools' ``pkg_resources`` deprecation, raised by VISSL's ``import pkg_resources``
  (``vissl/utils/misc.py``, ``collect_env.py``);
* Hydra's "version_base parameter is not specified", raised by VISSL's
  ``compose_hydra_configuration`` (``vissl/utils/hydra_config.py``).

``torch.jit.script``'s deprecation is attributed to torch itself whoever calls it, so it is not
filtered: ``fvcore.nn``, whose import scripts two functions (pulled in by classy_vision's
hooks), is imported once here with that warning caught.
"""
import importlib
import warnings

# (message, category, module the warning is attributed to), as for warnings.filterwarnings
FILTERS = [
    (r"The 'torchvision\.transforms\._(functional|transforms)_video' module is deprecated",
     UserWarning, r"torchvision\.transforms\._(functional|transforms)_video$"),
    (r"pkg_resources is deprecated as an API", UserWarning, r"vissl\.utils\.(misc|collect_env)$"),
    (r"\s*The version_base parameter is not specified", UserWarning,
     r"vissl\.utils\.hydra_config$"),
]
# module imported with its import-time warning caught -> (message, category)
QUIET_IMPORTS = {"fvcore.nn": (r"`torch\.jit\.script` is deprecated", FutureWarning)}


def apply() -> None:
    """Installs the filters and makes the quiet imports; idempotent."""
    for message, category, module in FILTERS:
        warnings.filterwarnings("ignore", message=message, category=category, module=module)
    for name, (message, category) in QUIET_IMPORTS.items():
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=message, category=category)
            importlib.import_module(name)

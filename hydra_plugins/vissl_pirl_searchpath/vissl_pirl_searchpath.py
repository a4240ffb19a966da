"""Hydra search-path plugin that puts vissl-pirl's configs in front of VISSL's.

VISSL's own plugin prepends ``pkg://configs`` and ``file://configs`` (relative to
the working directory). Hydra runs search-path plugins in discovery order,
which depends on ``sys.path``, so a plain prepend here could land behind
VISSL's, and from some directories ``config=pretrain/pirl/pirl_jigsaw_4node_resnet50``
would silently resolve to VISSL's built-in file of the same name. This plugin
adds the plugin's config folder by absolute path and makes every later plain
``prepend`` on the same search path insert behind it, so the plugin's configs
win whatever the plugin order and working directory.

When the search path is VISSL's (``pkg://vissl.config``: VISSL's launcher, the plugin's, any
``compose_hydra_configuration``), the plugin also registers its components
(``vissl_pirl_plugin.engine.registration``), so that a run started by VISSL's own
``tools/run_distributed_engines.py`` knows ``pirl_loss`` and ``pirl_jigsaw_head``. Other Hydra
applications never import the plugin (nor VISSL).
"""
import importlib.util
from pathlib import Path

from hydra.core.config_search_path import ConfigSearchPath, SearchPathQuery
from hydra.plugins.search_path_plugin import SearchPathPlugin

PROVIDER = "vissl-pirl"
VISSL_CONFIG_MODULE = "pkg://vissl.config"


def plugin_config_root() -> Path:
    """The plugin's config folder (``configs/`` beside the package in a source checkout, or the
    ``hydra_configs/`` an install copies into it), found without importing the package (and
    VISSL)."""
    spec = importlib.util.find_spec("vissl_pirl_plugin")
    if spec is None or spec.origin is None:
        raise ImportError("vissl_pirl_plugin is not installed: run `make install` or "
                          "`pip install -e .` in the vissl-pirl repository.")
    package = Path(spec.origin).resolve().parent
    installed = package / "hydra_configs"
    return installed if installed.is_dir() else package.parent / "configs"


class VisslPirlSearchPathPlugin(SearchPathPlugin):
    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        search_path.prepend(provider=PROVIDER, path=f"file://{plugin_config_root()}")
        keep_plugin_in_front(search_path)
        if any(entry.path == VISSL_CONFIG_MODULE for entry in search_path.get_path()):
            from vissl_pirl_plugin.engine.registration import register_in_vissl_launch

            register_in_vissl_launch()


def keep_plugin_in_front(search_path: ConfigSearchPath) -> None:
    """Makes later anchor-less ``prepend`` calls insert right behind this plugin's entries."""
    append, prepend = search_path.append, search_path.prepend

    def prepend_behind_plugin(provider: str, path: str, anchor=None) -> None:
        if anchor is None:
            append(provider, path, anchor=SearchPathQuery(provider=PROVIDER))
        else:
            prepend(provider, path, anchor)

    search_path.prepend = prepend_behind_plugin

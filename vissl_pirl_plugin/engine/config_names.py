"""Composing a config from command-line overrides, with a misspelt config or key in one line.

Hydra answers ``config=pretrain/pirl/pirl_jigsaw_typo`` with ``MissingConfigException`` and
``config.LOSS.pirl_loss.num_negativs=2`` with ``ConfigCompositionException`` (omegaconf's
``ConfigAttributeError``: the key is not in the struct), each a 65-line traceback from the
launcher. ``compose`` raises ``ConfigNameError`` instead, a ``UserInputError`` that the tools print
in one line: what is wrong, the nearest existing config or key (``did you mean``), and how to
list the PIRL configs (``vissl-pirl-train --list-configs``, ``plugin_configs``).
"""
import difflib
import re
from typing import List, Optional

from hydra.errors import HydraException, MissingConfigException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError
from vissl.utils.hydra_config import compose_hydra_configuration, convert_to_attrdict

from vissl_pirl_plugin.utils.user_errors import InvalidInputError

LIST_COMMAND = "vissl-pirl-train --list-configs"
# the sub-folders of this folder are config groups, added with +config/<folder>=<name>
GROUP_PARENT = "pretrain/pirl"
CONFIG_KEY = "config"


class ConfigNameError(InvalidInputError):
    """A config or key named on the command line does not exist; the message names the nearest."""


def compose(overrides: List[str]):
    """``(args, config)`` composed from VISSL's defaults and ``overrides``, as VISSL's launcher
    composes it; an unknown config or key raises ``ConfigNameError``."""
    try:
        return convert_to_attrdict(compose_hydra_configuration(overrides))
    except HydraException as error:
        raise ConfigNameError(explain(error, overrides)) from error


def plugin_configs() -> List[str]:
    """The plugin's configs as a command line names them: ``config=pretrain/pirl/NAME``,
    ``config=benchmark/...``, and the groups, ``+config/pretrain/pirl/GROUP=NAME``."""
    from hydra_plugins.vissl_pirl_searchpath.vissl_pirl_searchpath import plugin_config_root

    root = plugin_config_root() / CONFIG_KEY
    names = sorted(str(path.relative_to(root).with_suffix("")) for path in root.rglob("*.yaml"))
    return [override(name) for name in names]


def override(name: str) -> str:
    """How a command line names config ``name`` (a path under ``config/``)."""
    folder, _, option = name.rpartition("/")
    if folder.startswith(GROUP_PARENT + "/"):
        return f"+{CONFIG_KEY}/{folder}={option}"
    return f"{CONFIG_KEY}={name}"


def explain(error: HydraException, overrides: List[str]) -> str:
    """One line for Hydra's ``error``: what is wrong, the nearest config or key, the list."""
    listing = f"`{LIST_COMMAND}` lists the PIRL configs."
    if isinstance(error, MissingConfigException):
        missing = re.search(rf"Could not find '{CONFIG_KEY}/([^']+)'", str(error))
        if missing:
            return f"{missing_config(missing.group(1))} {listing}"
    unknown_key = re.search(r"Could not override '([^']+)'", str(error))
    if unknown_key and isinstance(error.__cause__, (ConfigAttributeError, ConfigKeyError)):
        return f"{missing_key(unknown_key.group(1), error.__cause__, overrides)} {listing}"
    first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return f"{first_line.rstrip('.')}. {listing}"


def missing_config(name: str) -> str:
    """``name`` (under ``config/``) does not exist: the nearest config of its folder or of all."""
    nearest = _nearest(name, _all_config_names())
    hint = f" Did you mean `{override(nearest)}`?" if nearest else ""
    return f"`{override(name)}`: there is no config {name}.{hint}"


def missing_key(key: str, cause: ConfigKeyError, overrides: List[str]) -> str:
    """Override ``key`` names a key that does not exist: the nearest key at the first level
    that is missing (``cause.full_key``), in the override the user wrote."""
    written = next((o for o in overrides if o.lstrip("+~").split("=", 1)[0] == key), key)
    first_missing = cause.full_key or key
    parent, _, name = first_missing.rpartition(".")
    siblings = _keys_of(parent, [o for o in overrides if _selects_a_config(o)])
    nearest = _nearest(name, siblings)
    if nearest is None:
        hint = f" The keys of {parent}: {', '.join(siblings)}." if 0 < len(siblings) <= 20 else ""
    else:
        fixed = written.replace(first_missing, f"{parent}.{nearest}", 1).lstrip("+~")
        hint = f" Did you mean `{fixed}`?"
    return (f"`{written}`: the config has no key {first_missing.removeprefix(CONFIG_KEY + '.')}."
            f"{hint} (`+{key}=...` adds a key of your own.)")


def _selects_a_config(override_text: str) -> bool:
    """``config=NAME`` or ``+config/GROUP=NAME``: the overrides that choose config files."""
    key = override_text.lstrip("+~").split("=", 1)[0]
    return key == CONFIG_KEY or key.startswith(CONFIG_KEY + "/")


def _keys_of(path: str, config_overrides: List[str]) -> List[str]:
    """The keys of ``path`` in the config the user chose (without their other overrides)."""
    try:
        node = OmegaConf.select(compose_hydra_configuration(config_overrides), path)
    except HydraException:
        return []
    return [str(k) for k in node.keys()] if isinstance(node, DictConfig) else []


def _nearest(name: str, candidates: List[str]) -> Optional[str]:
    """The candidate most like ``name``, comparing the last path part first."""
    last = name.rpartition("/")[2]
    by_last = {c.rpartition("/")[2]: c for c in candidates if c.rpartition("/")[0] == name.rpartition("/")[0]}
    match = difflib.get_close_matches(last, list(by_last), n=1, cutoff=0.6)
    if match:
        return by_last[match[0]]
    match = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    return match[0] if match else None


def _all_config_names() -> List[str]:
    """Every config under ``config/`` that Hydra finds (the plugin's and VISSL's)."""
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    with initialize_config_module(config_module="vissl.config", version_base="1.1"):  # VISSL's
        loader = GlobalHydra.instance().config_loader()
        return [name.removeprefix(CONFIG_KEY + "/") for name in _walk(loader, CONFIG_KEY)]


def _walk(loader, group: str) -> List[str]:
    """The configs of ``group`` and of its sub-groups, as ``group/.../name``."""
    names = [f"{group}/{option}" for option in loader.get_group_options(group)]
    for child in loader.list_groups(group):
        names += _walk(loader, f"{group}/{child}")
    return names

"""Every shipped config composes through the plugin and needs nothing that is not installed."""
from typing import Iterator, List, Tuple

import pytest
from vissl.utils.misc import is_apex_available

from vissl_pirl_plugin.engine import launcher
from vissl_pirl_plugin.engine.config_names import plugin_configs
from vissl_pirl_plugin.engine.config_validation import validate_config

from conftest import REPO

CONFIGS = REPO / "configs" / "config"
PAPER = "config=pretrain/pirl/pirl_jigsaw_4node_resnet50"


def shipped_config_overrides() -> List[List[str]]:
    """The command-line overrides that compose each file of configs/config the way it is used,
    as `vissl-pirl-train --list-configs` lists them: an option group (+config/pretrain/pirl/
    head=mlp) is added to the paper config."""
    return [[PAPER, name] if name.startswith("+") else [name] for name in plugin_configs()]


def test_the_list_of_configs_names_every_shipped_file():
    listed = {name.lstrip("+").replace("config=", "config/").replace("=", "/")
              for name in plugin_configs()}
    assert listed == {f"config/{path.relative_to(CONFIGS).with_suffix('').as_posix()}"
                      for path in CONFIGS.rglob("*.yaml")}
    assert "+config/pretrain/pirl/head=mlp" in plugin_configs()


def strings_naming_apex(node, key: str = "config") -> Iterator[Tuple[str, str]]:
    if isinstance(node, dict):
        for name, value in node.items():
            yield from strings_naming_apex(value, f"{key}.{name}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from strings_naming_apex(value, f"{key}[{index}]")
    elif isinstance(node, str) and "apex" in node.lower():
        yield key, node


@pytest.fixture(autouse=True)
def in_tmp_dir(tmp_path, monkeypatch):
    """VISSL saves train_config.yaml to CHECKPOINT.DIR ('.') when it converts a config."""
    monkeypatch.chdir(tmp_path)


def test_every_file_of_configs_is_composed_here():
    files = {path for path in CONFIGS.rglob("*.yaml")}
    assert len(shipped_config_overrides()) == len(files) >= 14


@pytest.mark.parametrize("overrides", shipped_config_overrides(), ids=" ".join)
def test_shipped_config_composes_without_apex(overrides):
    """apex is not installed: VISSL's SYNC_BN_TYPE / AMP_TYPE apex would raise NameError at model
    build (SyncBN on GPUs) or at the first AMP step, which no CPU run reaches."""
    _, cfg = launcher.compose_config(overrides)
    assert not is_apex_available()
    assert list(strings_naming_apex(cfg)) == []
    assert cfg.MODEL.SYNC_BN_CONFIG.SYNC_BN_TYPE == "pytorch"
    assert cfg.MODEL.AMP_PARAMS.AMP_TYPE == "pytorch"
    validate_config(cfg)


@pytest.mark.parametrize("overrides, key", [
    (["config.MODEL.SYNC_BN_CONFIG.CONVERT_BN_TO_SYNC_BN=true",
      "config.MODEL.SYNC_BN_CONFIG.SYNC_BN_TYPE=apex"], r"SYNC_BN_TYPE=pytorch"),
    (["config.MODEL.AMP_PARAMS.USE_AMP=true", "config.MODEL.AMP_PARAMS.AMP_TYPE=apex"],
     r"AMP_TYPE=pytorch"),
])
def test_apex_settings_are_refused_with_the_fix(overrides, key):
    _, cfg = launcher.compose_config([PAPER, *overrides])
    with pytest.raises(ValueError, match=f"apex is not installed.*config.MODEL.*{key}"):
        validate_config(cfg)

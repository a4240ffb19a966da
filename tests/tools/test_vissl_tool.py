"""``python -m vissl_pirl_plugin.tools.vissl_tool``: VISSL's own tools, with the plugin first."""
import runpy
import sys

import pytest

from vissl_pirl_plugin.tools import vissl_tool


def test_runs_the_named_vissl_tool_with_the_plugin_imported(monkeypatch):
    calls = []

    def run_path(path, run_name):
        calls.append((path, run_name, list(sys.argv), "vissl_pirl_plugin" in sys.modules))

    monkeypatch.setattr(runpy, "run_path", run_path)
    monkeypatch.setattr(sys, "argv", ["vissl_tool"])
    vissl_tool.main(["train_svm", "config=benchmark/x", "config.SVM.cross_val_folds=2"])
    path = str(vissl_tool.vissl_tools()["train_svm"])
    assert calls == [(path, "__main__", [path, "config=benchmark/x",
                                         "config.SVM.cross_val_folds=2"], True)]


def test_finds_vissls_tools_wherever_vissl_is_installed(tmp_path, monkeypatch):
    """``pip install --target`` (the lent GPU machine's layout): no site-packages in the path."""
    import importlib.metadata

    target = tmp_path / "target"
    (target / "tools").mkdir(parents=True)
    (target / "tools" / "train_svm.py").write_text("print('svm')\n")
    info = target / "vissl-0.1.6.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: vissl\nVersion: 0.1.6\n")
    (info / "RECORD").write_text("tools/__init__.py,,\ntools/train_svm.py,,\nvissl/__init__.py,,\n")
    distribution = importlib.metadata.PathDistribution(info)
    monkeypatch.setattr(importlib.metadata, "distribution", lambda name: distribution)
    assert vissl_tool.vissl_tools() == {"train_svm": target / "tools" / "train_svm.py"}


def test_lists_vissl_tools_and_refuses_unknown_ones(capsys):
    assert {"train_svm", "run_distributed_engines"} <= set(vissl_tool.vissl_tools())
    assert all(path.is_file() for path in vissl_tool.vissl_tools().values())
    with pytest.raises(SystemExit, match="'trian_svm' is not one of VISSL's tools: choose one of"):
        vissl_tool.main(["trian_svm"])
    vissl_tool.main(["--help"])
    assert "train_svm" in capsys.readouterr().out

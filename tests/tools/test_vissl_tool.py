"""``python -m vissl_pirl_plugin.tools.vissl_tool``: VISSL's own tools, with the plugin first."""
import runpy
import sys

import pytest

from vissl_pirl_plugin.tools import vissl_tool


def test_runs_the_named_vissl_tool_with_the_plugin_imported(monkeypatch):
    calls = []

    def run_module(name, run_name, alter_sys):
        calls.append((name, run_name, list(sys.argv), "vissl_pirl_plugin" in sys.modules))

    monkeypatch.setattr(runpy, "run_module", run_module)
    monkeypatch.setattr(sys, "argv", ["vissl_tool"])
    vissl_tool.main(["train_svm", "config=benchmark/x", "config.SVM.cross_val_folds=2"])
    assert calls == [("tools.train_svm", "__main__",
                      ["tools/train_svm.py", "config=benchmark/x", "config.SVM.cross_val_folds=2"], True)]


def test_lists_vissl_tools_and_refuses_unknown_ones(capsys):
    assert {"train_svm", "run_distributed_engines"} <= set(vissl_tool.vissl_tools())
    with pytest.raises(SystemExit, match="'trian_svm' is not one of VISSL's tools: choose one of"):
        vissl_tool.main(["trian_svm"])
    vissl_tool.main(["--help"])
    assert "train_svm" in capsys.readouterr().out

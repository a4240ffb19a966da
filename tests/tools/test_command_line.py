"""A clean console (issue 20, item 6): no third-party warnings before a command's first line,
and a user's mistake answered with one line and a non-zero exit, never a traceback."""
import re
import subprocess
import sys
import warnings

import pytest
import torch

from vissl_pirl_plugin.tools import convert_checkpoint, invariance, linear_probe, train

from conftest import REPO

PAPER = "config=pretrain/pirl/pirl_jigsaw_4node_resnet50"


def run_python(code: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd)


def test_importing_the_plugin_and_composing_a_config_prints_no_warning(tmp_path):
    """torchvision's two video-module deprecations, torch.jit.script's (fvcore), setuptools'
    pkg_resources and Hydra's version_base were printed before every command's first line."""
    result = run_python(
        "from vissl_pirl_plugin.engine.launcher import compose_config\n"
        f"compose_config([{PAPER!r}])\n"
        "import vissl.hooks, classy_vision.hooks\n"
        "from vissl.utils.collect_env import collect_env_info\n", cwd=tmp_path)
    assert result.returncode == 0 and result.stderr == "", result.stderr[-3000:]


def add_one(x: torch.Tensor) -> torch.Tensor:
    return x + 1


def test_warnings_of_our_own_and_of_the_users_code_still_show():
    import vissl_pirl_plugin  # noqa: F401 - its filters are installed

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        torch.jit.script(add_one)  # the user's own call of a deprecated torch API
        warnings.warn_explicit("a warning of the plugin's", UserWarning, "pirl_loss.py", 1,
                               module="vissl_pirl_plugin.losses.pirl_loss")
    messages = [str(w.message) for w in caught]
    assert any("torch.jit.script` is deprecated" in m for m in messages), messages
    assert "a warning of the plugin's" in messages


def one_line_error(capsys, cli, argv, monkeypatch) -> str:
    monkeypatch.setattr(sys, "argv", ["the-tool", *argv])
    with pytest.raises(SystemExit) as exited:
        cli()
    assert exited.value.code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith("the-tool: error: ")
    return err


def test_a_missing_checkpoint(tmp_path, capsys, monkeypatch):
    err = one_line_error(capsys, convert_checkpoint.cli,
                         [str(tmp_path / "nope.torch"), str(tmp_path / "out.pth")], monkeypatch)
    assert f"Checkpoint {tmp_path / 'nope.torch'} does not exist. Pass a file that VISSL" in err


@pytest.mark.parametrize("tool", [linear_probe.cli, invariance.cli])
def test_a_folder_without_train_config(tmp_path, capsys, monkeypatch, tool):
    checkpoint = tmp_path / "run" / "checkpoint.torch"
    checkpoint.parent.mkdir()
    torch.save({"iteration": 1}, checkpoint)
    err = one_line_error(capsys, tool, ["--checkpoint", str(checkpoint)], monkeypatch)
    assert "train_config.yaml does not exist. Pass the train_config.yaml that VISSL wrote" in err


def test_not_a_checkpoint(tmp_path, capsys, monkeypatch):
    (tmp_path / "notes.txt").write_text("not a checkpoint")
    err = one_line_error(capsys, convert_checkpoint.cli,
                         [str(tmp_path / "notes.txt"), str(tmp_path / "o.pth")], monkeypatch)
    assert "notes.txt is not a checkpoint that torch.save wrote (Unsupported operand" in err


def test_a_launch_check_fails_in_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    err = one_line_error(capsys, train.cli, [PAPER, f"config.DATA.TRAIN.DATA_PATHS=[{tmp_path}/x]",
                                              "config.MACHINE.DEVICE=cpu",
                                              "config.DISTRIBUTED.NUM_NODES=1"], monkeypatch)
    assert "DATA_PATHS[0]=" in err and "is not a folder" in err


LIST = "`vissl-pirl-train --list-configs` lists the PIRL configs."


@pytest.mark.parametrize("argv, expected", [
    (["config=pretrain/pirl/pirl_jigsaw_typo"],
     "`config=pretrain/pirl/pirl_jigsaw_typo`: there is no config pretrain/pirl/pirl_jigsaw_typo. "
     f"Did you mean `config=pretrain/pirl/pirl_jigsaw_cpu_demo`? {LIST}"),
    ([PAPER, "config.LOSS.pirl_loss.num_negativs=2"],
     "`config.LOSS.pirl_loss.num_negativs=2`: the config has no key LOSS.pirl_loss.num_negativs. "
     "Did you mean `config.LOSS.pirl_loss.num_negatives=2`? (`+config.LOSS.pirl_loss.num_negativs=...` "
     f"adds a key of your own.) {LIST}"),
    ([PAPER, "config.LOSS.pirl_los.num_negatives=2"], "Did you mean `config.LOSS.pirl_loss.num_negatives=2`?"),
    ([PAPER, "+config/pretrain/pirl/trunk=resnet19"],
     "there is no config pretrain/pirl/trunk/resnet19. Did you mean `+config/pretrain/pirl/trunk=resnet18`?"),
    (["config.OPTIMIZER.num_epochs=2"], f"You must specify 'config', e.g, config=<OPTION>. {LIST}"),
])
def test_a_misspelt_config_or_key_is_one_line_naming_the_nearest(capsys, monkeypatch, tmp_path,
                                                               argv, expected):
    """Each was a 65-line traceback of Hydra's (MissingConfigException, ConfigAttributeError)."""
    monkeypatch.chdir(tmp_path)
    assert expected in one_line_error(capsys, train.cli, argv, monkeypatch)


def test_the_pirl_configs_are_listed_as_a_command_line_names_them(capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["vissl-pirl-train", "--list-configs"])
    train.cli()
    listed = capsys.readouterr().out.splitlines()
    assert PAPER in listed and "+config/pretrain/pirl/trunk=resnet18" in listed


class RunsCode:
    def __reduce__(self):
        return (print, ("pwned",))


def test_a_crafted_checkpoint_is_refused_in_one_line_without_torchs_advice(tmp_path):
    """The console script itself, in a fresh process: stderr is that one line, nothing else."""
    crafted = tmp_path / "crafted.torch"
    torch.save({"classy_state_dict": RunsCode()}, crafted)
    convert = REPO / ".venv" / "bin" / "vissl-pirl-convert"
    command = [str(convert)] if convert.exists() else [sys.executable, "-m",
                                                       "vissl_pirl_plugin.tools.convert_checkpoint"]
    result = subprocess.run([*command, str(crafted), str(tmp_path / "out.pkl")],
                            capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 1 and result.stdout == "", result.stdout
    assert result.stderr.count("\n") == 1, result.stderr
    assert re.search(r"was not loaded: it holds a reference to \S*print,", result.stderr)
    assert "If you trust the file's source" in result.stderr
    assert "Re-running `torch.load`" not in result.stderr and "pwned" not in result.stderr
    assert not (tmp_path / "out.pkl").exists()


def test_the_traceback_is_there_on_request(tmp_path, monkeypatch):
    monkeypatch.setenv("VISSL_PIRL_TRACEBACK", "1")
    monkeypatch.setattr(sys, "argv", ["x", str(tmp_path / "nope.torch"), str(tmp_path / "o")])
    with pytest.raises(FileNotFoundError):
        convert_checkpoint.cli()


def test_a_bug_keeps_its_traceback(monkeypatch):
    """Only a UserInputError is a user's mistake; any other error propagates."""
    from vissl_pirl_plugin.tools.command_line import run_tool

    def buggy(argv):
        raise ValueError("an internal bug")
    with pytest.raises(ValueError, match="an internal bug"):
        run_tool(buggy, [])

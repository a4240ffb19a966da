"""The package layout and the documentation's commands: layers import only downwards, every
sub-package says what lives there, and every command in README.md and docs/ names modules,
console scripts, configs and files that exist (the commands that fit in CI run in the
end-to-end tests, e.g. tests/test_training_e2e.py and tests/tools/test_demo.py)."""
import ast
import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from typing import Iterator, List

import pytest

from conftest import REPO

PACKAGE = REPO / "vissl_pirl_plugin"
# a layer may import the layers after it in this list, never those before it
LAYERS = ["tools", "engine", "hooks", "losses", "models", "optimizers", "data", "utils"]
COMPONENTS = ("losses", "models", "optimizers", "data")  # one level
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def plugin_imports(path: Path) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            yield node.module
        elif isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)


def layer_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "vissl_pirl_plugin" else ""


def test_lower_layers_never_import_higher_ones():
    offences = []
    for path in PACKAGE.rglob("*.py"):
        layer = layer_of(".".join(path.relative_to(REPO).with_suffix("").parts))
        if layer not in LAYERS:
            continue
        for module in plugin_imports(path):
            target = layer_of(module)
            if target in LAYERS and LAYERS.index(target) < LAYERS.index(layer):
                offences.append(f"{path.relative_to(REPO)} imports {module}")
    # losses, models, optimizers and data are one level: none of them imports another
    for path in PACKAGE.rglob("*.py"):
        layer = layer_of(".".join(path.relative_to(REPO).with_suffix("").parts))
        if layer in COMPONENTS:
            offences += [f"{path.relative_to(REPO)} imports {module}" for module in plugin_imports(path)
                         if layer_of(module) in COMPONENTS and layer_of(module) != layer]
    assert not offences, offences


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_no_two_modules_import_each_other():
    modules = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    imports = {name: {target for target in plugin_imports(path) if target in modules}
               for name, path in modules.items()}
    # ``from package import module`` names the package: count the module it imports too
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module in modules:
                imports[name] |= {f"{node.module}.{alias.name}" for alias in node.names
                                  if f"{node.module}.{alias.name}" in modules}
    pairs = sorted({tuple(sorted((a, b))) for a, targets in imports.items() for b in targets
                    if a != b and a in imports.get(b, ())})
    assert not pairs, pairs


def test_every_sub_package_says_what_lives_there():
    for init in PACKAGE.rglob("__init__.py"):
        docstring = ast.get_docstring(ast.parse(init.read_text()))
        assert docstring, f"{init.relative_to(REPO)} has no docstring"


def doc_commands() -> List[str]:
    """Every line of the fenced shell blocks in README.md and docs/, continuations joined."""
    commands = []
    for doc in DOCS:
        for block in re.findall(r"```(?:bash|sh|shell)?\n(.*?)```", doc.read_text(), re.S):
            commands += [line.split("  #")[0].strip() for line in block.replace("\\\n", " ").split("\n")
                         if line.strip() and not line.strip().startswith("#")]
    return commands


def console_scripts() -> List[str]:
    setup = (REPO / "setup.py").read_text()
    return re.findall(r'"(vissl-pirl-[a-z0-9-]+) = ', setup)


def test_documented_modules_scripts_configs_and_files_exist():
    commands = doc_commands()
    assert any("tools/run_distributed_engines.py" in command for command in commands)
    problems = []
    for command in commands:
        for module in re.findall(r"python -m ([\w.]+)", command):
            if module.startswith("vissl_pirl_plugin") and not module.endswith(".NAME") and importlib.util.find_spec(module) is None:
                problems.append(f"no module {module}: {command}")
        for script in re.findall(r"(?<![\w/-])(vissl-pirl-[a-z0-9-]+)", command):
            if script not in console_scripts():
                problems.append(f"no console script {script}: {command}")
        for config in re.findall(r"(?<![.\w])config=([\w/]+)", command):
            if not (REPO / "configs" / "config" / f"{config}.yaml").is_file():
                vissl_configs = Path(importlib.util.find_spec("configs").origin).parent
                if not (vissl_configs / "config" / f"{config}.yaml").is_file():
                    problems.append(f"no config {config}: {command}")
        for path in re.findall(r"(?<![\w/.])((?:tools|benchmarks|configs|tests)/[\w/.-]+\.(?:py|yaml))", command):
            if not (REPO / path).is_file():
                problems.append(f"no file {path}: {command}")
        for target in re.findall(r"^make (?:[A-Z_]+=\S+ )*([a-z-]+)", command):
            if not re.search(rf"^{target}:", (REPO / "Makefile").read_text(), re.M):
                problems.append(f"no make target {target}: {command}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("script", console_scripts())
def test_console_scripts_answer_help(script):
    module = re.search(rf'"{script} = ([\w.]+):(\w+)"', (REPO / "setup.py").read_text())
    result = subprocess.run([sys.executable, "-c", f"import sys; sys.argv = ['{script}', '--help']; "
                             f"from {module.group(1)} import {module.group(2)}; {module.group(2)}()"],
                            capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "usage" in result.stdout.lower() or "config" in result.stdout.lower(), result.stdout[:500]

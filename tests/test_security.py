"""What a suite file can make sftbench do: no code runs from YAML or weights (a `module:Class` name is
imported only with --allow-code: tests/test_untrusted.py), no path leaves --out."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from sftbench.errors import ConfigError
from sftbench.paths import check_safe_name
from sftbench.results.store import Store

PACKAGE = Path(__file__).resolve().parent.parent / "sftbench"
UNSAFE_CALLS = {("yaml", "load"), ("yaml", "unsafe_load"), ("yaml", "full_load"), ("pickle", "load"),
                ("pickle", "loads"), ("marshal", "loads"), ("builtins", "eval"), ("builtins", "exec")}
# importlib is allowed only where the module name is a user's explicit `module:Class` strategy or a
# fixed list of offline weight packages
IMPORT_ALLOWED = {"strategies/lookup.py", "backbones/offline.py"}


def unsafe_uses(source: str) -> list[str]:
    """Calls that could run code from a file: torch.load without weights_only=True, yaml/pickle loads,
    eval/exec, and dynamic imports."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Attribute):  # model.eval() is not eval(): only bare names are builtins
            owner = func.value.id if isinstance(func.value, ast.Name) else "<expr>"
        else:
            owner = "builtins"
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if (owner, name) == ("torch", "load"):
            safe = any(k.arg == "weights_only" and isinstance(k.value, ast.Constant) and k.value.value is True
                       for k in node.keywords)
            if not safe:
                found.append(f"line {node.lineno}: torch.load without weights_only=True")
        elif (owner, name) in UNSAFE_CALLS or name in ("import_module", "__import__"):
            found.append(f"line {node.lineno}: {owner}.{name}")
    return found


def test_the_detector_catches_each_unsafe_form():
    bad = ("torch.load(p)\ntorch.load(p, weights_only=False)\nyaml.load(t)\npickle.loads(b)\neval(s)\n"
           "importlib.import_module(m)\n")
    assert len(unsafe_uses(bad)) == 6
    assert unsafe_uses("torch.load(p, weights_only=True)\nyaml.safe_load(t)\nmodel.eval()\n") == []


def test_the_package_never_loads_code_from_files():
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        for use in unsafe_uses(path.read_text()):
            if relative in IMPORT_ALLOWED and "import_module" in use:
                continue
            problems.append(f"{relative} {use}")
    assert problems == []


@pytest.mark.parametrize("name", ["../../x", "..", ".", "a/b", "/abs", "a\\b", "", ".hidden", "x" * 200, "a\x00b",
                                  "a b", "~"])
def test_no_run_id_or_suite_name_leaves_the_output_folder(tmp_path, name):
    with pytest.raises(ConfigError, match="is not a safe file name"):
        check_safe_name(name, "run id")
    with pytest.raises(ConfigError):
        Store.for_run(tmp_path, name, "r1")
    with pytest.raises(ConfigError):
        Store.for_run(tmp_path, "suite", name)


def test_suite_names_and_ids_with_separators_are_refused(tiny_suite):
    from sftbench.suite.loader import parse_suite

    for bad in ({"name": "../escape"}, {"matrix": {**tiny_suite["matrix"], "strategies": [{"name": "full", "id": "a/b"}]}}):
        with pytest.raises(ConfigError, match="is not a safe name"):
            parse_suite({**tiny_suite, **bad}, "s.yaml")

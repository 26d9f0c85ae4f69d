"""The package's shape: layers and acyclicity (import-linter), no import hidden in a function."""
from __future__ import annotations

import ast
from pathlib import Path

from importlinter.cli import lint_imports

PACKAGE = Path(__file__).resolve().parent.parent / "sftbench"


def test_import_linter_contracts_hold():
    assert lint_imports(config_filename=str(PACKAGE.parent / "pyproject.toml")) == 0


def test_imports_inside_functions_are_only_deferred_heavy_dependencies():
    """A deferred import is allowed only with a comment that says `deferred:` and why."""
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        source = path.read_text()
        lines = source.splitlines()
        for node in ast.walk(ast.parse(source)):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for inner in ast.walk(node):
                if isinstance(inner, (ast.Import, ast.ImportFrom)):
                    around = " ".join(lines[max(0, inner.lineno - 2):inner.lineno])
                    if "deferred:" not in around:
                        offenders.append(f"{path.relative_to(PACKAGE.parent)}:{inner.lineno}")
    assert offenders == []


def test_no_module_or_function_is_oversized():
    too_long = []
    for path in PACKAGE.rglob("*.py"):
        source = path.read_text()
        if len(source.splitlines()) > 300:
            too_long.append(f"{path.name}: {len(source.splitlines())} lines")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 60:
                too_long.append(f"{path.name}:{node.name}: {node.end_lineno - node.lineno + 1} lines")
    assert too_long == []

"""The package's shape, for the restructure's before/after figures: module count, the largest
module and functions, and the import cycles (strongly connected groups of grimp's import graph).

    python benchmarks/code_structure.py                 # this checkout
    git worktree add /tmp/old 38b0dec && python benchmarks/code_structure.py /tmp/old   # before
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import grimp


def strongly_connected(graph: grimp.ImportGraph) -> list[list[str]]:
    """Tarjan's algorithm; groups of more than one module are import cycles."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for target in graph.find_modules_directly_imported_by(module):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            group = []
            while not group or group[-1] != module:
                group.append(stack.pop())
            groups.append(sorted(group))

    sys.setrecursionlimit(10_000)
    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return [g for g in groups if len(g) > 1]


def main() -> None:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve()
    sys.path.insert(0, str(root))  # analyse that checkout's sftbench, not the installed one
    files = sorted((root / "sftbench").rglob("*.py"))
    lines = {str(p.relative_to(root)): len(p.read_text().splitlines()) for p in files}
    functions = sorted(((node.end_lineno or node.lineno) - node.lineno + 1, f"{p.relative_to(root)}:{node.name}")
                       for p in files for node in ast.walk(ast.parse(p.read_text()))
                       if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)))
    cycles = strongly_connected(grimp.build_graph("sftbench", cache_dir=None))
    print(f"modules: {len(files)} files")
    print(f"largest module: {max(lines.items(), key=lambda item: item[1])}")
    print(f"largest functions: {functions[::-1][:3]}")
    print(f"import cycles: {len(cycles)} {[len(c) for c in cycles]}")
    for cycle in cycles:
        print(f"  {cycle}")


if __name__ == "__main__":
    main()

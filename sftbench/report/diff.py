"""Rendering a run-to-run diff (`sftbench leaderboard --compare A B`): rich table, Markdown, JSON."""
from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any, Optional

from rich import box
from rich.console import Console
from rich.table import Table

from ..regression.diff import CaseDiff, RunDiff
from .escape import terminal_text

HEADERS = ("backbone", "dataset", "strategy", "top-1 A", "top-1 B", "Δ pp", "test", "p (Holm)", "", "img/s Δ",
           "peak Δ")


def _pct(value: Optional[float], signed: bool = False, scale: float = 100.0) -> str:
    if value is None:
        return "-"
    return f"{scale * value:+.2f}" if signed else f"{scale * value:.2f}"


def _mark(case: CaseDiff) -> str:
    if case.caveat:
        return "not judged"
    if not case.significant or case.delta is None:
        return ""
    return "▼ worse" if case.delta < 0 else "▲ better"


def rows(diff: RunDiff) -> list[list[str]]:
    out = []
    for c in diff.cases:
        out.append([c.labels["backbone"], c.labels["dataset"], c.labels["strategy"], _pct(c.top1_a), _pct(c.top1_b),
                    _pct(c.delta, signed=True), c.test or "-",
                    "-" if c.p_value is None else f"{c.p_value:.3g}", _mark(c),
                    _pct(c.train_change, signed=True) + ("%" if c.train_change is not None else ""),
                    _pct(c.peak_change, signed=True) + ("%" if c.peak_change is not None else "")])
    return out


def header_lines(diff: RunDiff, name_a: str, name_b: str) -> list[str]:
    lines = [f"A = {name_a} · B = {name_b} · two-sided tests, Holm across cases, alpha {diff.alpha}"]
    if diff.env_changes:
        lines += [f"{key}: {a} -> {b}" for key, (a, b) in diff.env_changes.items()]
    else:
        lines.append("environment: identical")
    if not diff.same_hardware:
        lines.append("different hardware: speed and memory are not compared")
    lines += sorted({f"not judged: {c.caveat}" for c in diff.cases if c.caveat})
    lines.append("significant: p (Holm) <= alpha and |Δ| beyond the case's seed sd where a run has >= 2 seeds")
    return lines


def print_diff(console: Console, diff: RunDiff, name_a: str, name_b: str) -> None:
    for line in header_lines(diff, name_a, name_b):
        console.print(terminal_text(line))
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for header in HEADERS:
        table.add_column(header, justify="left" if header in HEADERS[:3] + ("test", "") else "right", no_wrap=True)
    for case, cells in zip(diff.cases, rows(diff)):
        style = None if not case.significant else ("red" if (case.delta or 0) < 0 else "green")
        table.add_row(*[terminal_text(c) for c in cells], style=style)
    console.print(table)


def markdown_diff(diff: RunDiff, name_a: str, name_b: str) -> str:
    lines = [f"- {line}" for line in header_lines(diff, name_a, name_b)] + [""]
    lines += ["| " + " | ".join(h or "verdict" for h in HEADERS) + " |",
              "|" + "---|" * 3 + "---:|" * 3 + "---|---:|---|---:|---:|"]
    lines += ["| " + " | ".join(cells) + " |" for cells in rows(diff)]
    return "\n".join(lines) + "\n"


def json_diff(diff: RunDiff, name_a: str, name_b: str) -> str:
    def case(c: CaseDiff) -> dict[str, Any]:
        return {**asdict(c), "delta": c.delta}

    return json.dumps({"a": name_a, "b": name_b, "alpha": diff.alpha, "same_hardware": diff.same_hardware,
                       "env_changes": {k: list(v) for k, v in diff.env_changes.items()},
                       "cases": [case(c) for c in diff.cases]}, indent=2) + "\n"

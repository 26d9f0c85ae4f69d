"""Render an A/B comparison: a rich table, Markdown and JSON. Rendering only."""
from __future__ import annotations

import json
from typing import Any, Optional

from rich import box
from rich.console import Console
from rich.table import Table

from ..regression.ab import AbCase, Ratio
from .escape import markdown_cell, terminal_text
from .verdicts import STYLE

COLUMNS = ("case", "status", "train B/A [95% CI]", "eval B/A [95% CI]", "top-1 A %", "top-1 B %", "lost/gained", "Holm p")


def _ratio(r: Optional[Ratio]) -> str:
    if r is None or r.ratio is None:
        return "-"
    return f"{r.ratio:.3f} [{r.low:.3f}, {r.high:.3f}]" if r.low is not None else f"{r.ratio:.3f} [-]"


def _pct(x: Optional[float]) -> str:
    return "-" if x is None else f"{100 * x:.2f}"


def _row(c: AbCase) -> list[str]:
    by = {s.metric: s for s in c.speeds}
    acc = c.accuracy
    p = "-" if acc.p_adjusted is None else f"{acc.p_adjusted:.3g}"
    lost = f"{acc.losses}/{acc.gains}" if acc.p_value is not None else "-"
    return [c.case_id, c.status.value, _ratio(by.get("train_throughput")), _ratio(by.get("eval_throughput")),
            _pct(acc.a_top1), _pct(acc.b_top1), lost, p]


def _sides(sides: dict[str, dict[str, Any]]) -> list[str]:
    return [f"{side}: {info['python']} (sftbench from {info.get('imports', '?')}) · "
            + ", ".join(f"{k} {v}" for k, v in info["versions"].items() if v)
            for side, info in sides.items()]


def print_ab(console: Console, cases: list[AbCase], sides: dict[str, dict[str, Any]], title: str) -> None:
    for line in _sides(sides):
        console.print(terminal_text(line), highlight=False, soft_wrap=True)
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for i, name in enumerate(COLUMNS):
        table.add_column(name, justify="left" if i < 2 else "right", no_wrap=i < 4)
    for c in cases:
        row: list = [terminal_text(cell) for cell in _row(c)]
        row[1] = f"[{STYLE.get(c.status, '')}]{c.status.value}[/]"
        table.add_row(*row)
    console.print(table)
    for c in cases:
        console.print(terminal_text(f"{c.case_id}: {c.reason}"), highlight=False, soft_wrap=True)


def ab_markdown(cases: list[AbCase], sides: dict[str, dict[str, Any]], title: str) -> str:
    lines = [f"### {markdown_cell(title)}", "", *[f"- {markdown_cell(line)}" for line in _sides(sides)], "",
             "| " + " | ".join(COLUMNS) + " |", "|---|---|" + "---:|" * (len(COLUMNS) - 2)]
    lines += ["| " + " | ".join(map(markdown_cell, _row(c))) + " |" for c in cases]
    return "\n".join(lines) + "\n"


def ab_json(cases: list[AbCase], sides: dict[str, dict[str, Any]], rounds: int) -> str:
    return json.dumps({"sides": sides, "rounds": rounds, "cases": [c.to_dict() for c in cases]},
                      indent=2, sort_keys=True, default=str) + "\n"

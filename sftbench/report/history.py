"""`sftbench history show`: each case's series over runs, a sparkline, environment changes and
change points, as a rich table, Markdown or JSON (the JSON is what CI acts on)."""
from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from ..history.changepoints import ChangePoint
from ..history.series import RunPoint, Series
from .escape import markdown_cell, terminal_text

BARS = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[float]) -> str:
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    return "".join(BARS[min(len(BARS) - 1, int((v - low) / span * len(BARS)))] for v in values)


def commit_text(commit: str | None) -> str:
    """The commit's first 10 digits, keeping the `-dirty` mark of a run from an edited working tree."""
    if not commit:
        return "-"
    return commit[:10] + ("-dirty" if commit.endswith("-dirty") else "")


def value_text(series: Series, point: RunPoint) -> str:
    scale, unit = (100.0, " %") if series.metric == "top1" else (1.0, "")
    sd = f" ± {point.sd * scale:.2f}" if point.sd is not None else ""
    return f"{point.mean * scale:.2f}{sd}{unit} ({point.n})"


def env_text(point: RunPoint) -> str:
    return ", ".join(f"{name} {old} → {new}" for name, (old, new) in point.env_change.items())


def delta_text(change: ChangePoint) -> str:
    return f"{change.delta * 100:+.2f} pp" if change.series.metric == "top1" else f"{change.delta:+.1%}"


def change_text(change: ChangePoint) -> str:
    cause = f"; at {env_text(change.first_bad)}" if change.first_bad.env_change else ""
    return (f"{'▼' if change.worse else '▲'} {delta_text(change)} (p={change.p_value:.2g}) after "
            f"{change.last_good.run_id}{cause}")


def _rows(series: Series, changes: list[ChangePoint]) -> list[list[str]]:
    at = {c.index: c for c in changes}
    return [[p.run_id, commit_text(p.commit), p.date[:16], value_text(series, p), env_text(p),
             change_text(at[i]) if i in at else ""] for i, p in enumerate(series.points)]


HEADER = ["run", "commit", "date", "mean ± seed sd (n)", "environment change", "change point"]


def print_history(console: Console, series: list[Series], changes: list[ChangePoint]) -> None:
    for one in series:
        mine = [c for c in changes if c.series is one]
        title = f"{one.case_id} · {one.metric}" + (f" · machine {one.fingerprint}" if one.fingerprint else "")
        table = Table(title=terminal_text(f"{title}  {sparkline([p.mean for p in one.points])}"), title_justify="left")
        for name in HEADER:
            table.add_column(name)
        for row in _rows(one, mine):
            table.add_row(*map(terminal_text, row))
        console.print(table)
    console.print(terminal_text(f"{len(changes)} change point(s)" + "".join(f"\n  {c.series.case_id} {c.series.metric}: "
                                                                             f"{change_text(c)}" for c in changes)),
                  highlight=False)


def history_markdown(series: list[Series], changes: list[ChangePoint]) -> str:
    lines = []
    for one in series:
        mine = [c for c in changes if c.series is one]
        lines += [f"### {markdown_cell(one.case_id)} · {one.metric} {sparkline([p.mean for p in one.points])}", "",
                  "| " + " | ".join(HEADER) + " |", "|---" * len(HEADER) + "|"]
        lines += ["| " + " | ".join(map(markdown_cell, row)) + " |" for row in _rows(one, mine)] + [""]
    return "\n".join(lines)


def history_json(series: list[Series], changes: list[ChangePoint]) -> str:
    data: dict[str, Any] = {"series": [s.to_json() for s in series], "change_points": [c.to_json() for c in changes]}
    return json.dumps(data, indent=2)

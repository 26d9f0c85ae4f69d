"""Rendering the leaderboard table (also the end-of-run summary) with rich, and as Markdown.

Width-aware: columns are dropped in a fixed order of importance until the table fits the
console, so 80 columns stay readable. Colour follows rich, which honours NO_COLOR.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Optional

import pandas as pd
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..results.record import Record
from .board import groups, leaderboard_frame, rank
from .escape import terminal_text


def _num(value: Any, spec: str, scale: float = 1.0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return format(value * scale, spec)


def _accuracy(row: pd.Series) -> str:
    if row["n"] == 0:
        return "-"
    std = f"±{100 * row['top1_std']:.2f}" if row["top1_std"] is not None and pd.notna(row["top1_std"]) else ""
    return f"{100 * row['top1_mean']:.2f}{std} ({row['n']})"


# (header, cell, justify) in order of importance: metric columns at the end are dropped first
# when the terminal is narrow; the identity columns (backbone, dataset, strategy) never are.
Column = tuple[str, Callable[[pd.Series], str], str]
IDENTITY = {"backbone": "backbone_shown", "dataset": "dataset", "strategy": "strategy"}
COLUMNS: list[Column] = [
    ("#", lambda r: str(r["rank"]), "right"),
    ("backbone", lambda r: r["backbone_shown"], "left"),
    ("dataset", lambda r: r["dataset"], "left"),
    ("strategy", lambda r: r["strategy"] + (" [FAILED]" if r["failed"] else ""), "left"),
    ("top-1 % (±sd, n)", _accuracy, "right"),
    ("img/s", lambda r: _num(r["train_wall_samples_per_s"], ",.1f") + ("†" if r.get("warm_features") else ""), "right"),
    ("P", lambda r: "★" if r["pareto"] else "", "center"),
    ("gain pp", lambda r: _num(r["transfer_gain"], "+.2f", 100), "right"),
    ("trained %", lambda r: _num(r["trainable_fraction"], ".2f", 100), "right"),
    ("train s", lambda r: _num(r["train_wall_s"], ".1f"), "right"),
    ("eval/s", lambda r: _num(r["eval_samples_per_s"], ",.1f"), "right"),
    ("peak MB", lambda r: _num(r["peak_mb"], ",.0f"), "right"),
    ("params M", lambda r: _num(r["params_total"], ".2f", 1e-6), "right"),
]
ALWAYS = {"#", "backbone", "dataset", "strategy", "top-1 % (±sd, n)"}  # never dropped
FOOTNOTE = ("img/s: training images seen per second of the train phase's wall time (feature extraction included "
            "for cached probes; † a warm feature cache skipped it) · P ★: Pareto front of accuracy vs that cost · "
            "gain: vs random init")


def shared_identity(board: pd.DataFrame) -> dict[str, str]:
    """Identity columns whose value every row shares: they move to the title."""
    if len(board) < 2:
        return {}
    return {header: str(board[key].iloc[0]) for header, key in IDENTITY.items()
            if board[key].nunique() == 1 and not (header == "strategy" and board["failed"].any())}


def table_cells(board: pd.DataFrame, hidden: frozenset[str] = frozenset()) -> tuple[list[Column], list[list[str]]]:
    board = board.assign(rank=range(1, len(board) + 1))
    columns = [c for c in COLUMNS if c[0] not in hidden]
    return columns, [[cell(row) for _, cell, _ in columns] for _, row in board.iterrows()]


def fit_columns(columns: list[Column], cells: list[list[str]], width: int) -> list[int]:
    """Indices of the columns to show: metric columns go from the end until the table fits.
    Cells are never folded, so no word is ever broken."""
    widths = [max([len(columns[i][0])] + [len(row[i]) for row in cells]) + 3 for i in range(len(columns))]
    always = sum(1 for header, _, _ in columns if header in ALWAYS)  # fewer when identity moved to the title
    keep = list(range(len(columns)))
    while sum(widths[i] for i in keep) > width and len(keep) > always:
        keep.pop()
    return keep


def _title(title: str, shared: dict[str, str]) -> str:
    return " · ".join([title] + [f"{k} {v}" for k, v in shared.items()])


def rich_table(board: pd.DataFrame, title: str, width: int) -> Table:
    shared = shared_identity(board)
    columns, cells = table_cells(board, frozenset(shared))
    keep = fit_columns(columns, cells, width)
    table = Table(title=escape(_title(title, shared)), title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False,
                  caption=FOOTNOTE, caption_justify="left")
    for i in keep:
        header, _, justify = columns[i]
        table.add_column(header, justify=justify, no_wrap=True, overflow="ellipsis")  # type: ignore[arg-type]
    for row, failed in zip(cells, board["failed"]):
        table.add_row(*[terminal_text(row[i]) for i in keep], style="red" if failed else None)  # Text: '[random]' is not markup
    return table


def print_board(console: Console, board: pd.DataFrame, title: str, group_by: Optional[list[str]] = None,
                sort: str = "accuracy", show_errors: bool = True) -> None:
    for name, part in groups(board, group_by or []):
        ranked = rank(part, sort)
        console.print(rich_table(ranked, f"{title} · {name}" if name else title, console.width))
        for _, row in ranked[ranked["failed"]].iterrows() if show_errors else ():
            console.print(f"[red]{row['case_id']} failed:[/] {row['error']}", highlight=False, soft_wrap=True)


def markdown_board(board: pd.DataFrame, title: str, sort: str = "accuracy", group_by: Optional[list[str]] = None) -> str:
    out = []
    for name, part in groups(board, group_by or []):
        ranked = rank(part, sort)
        shared = shared_identity(ranked)
        columns, cells = table_cells(ranked, frozenset(shared))
        out += ["### " + _title(f"{title} · {name}" if name else title, shared), "",
                "| " + " | ".join(h for h, _, _ in columns) + " |",
                "|" + "|".join("---:" if j == "right" else "---" for _, _, j in columns) + "|"]
        out += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in cells]
        out += ["", FOOTNOTE, ""]
    return "\n".join(out)


def print_summary(console: Console, records: list[Record], title: str) -> None:
    """The end-of-run summary: the leaderboard of this run's records."""
    print_board(console, leaderboard_frame(records), title, show_errors=False)
    for r in records:
        if not r.ok:
            phase = r.error.phase if r.error else None  # None: it never started (a worker or node could not run it)
            when = f"failed during {phase}" if phase else "failed before it started"
            console.print(f"[red]{r.run_key} {when}:[/] {r.error_message}", highlight=False)

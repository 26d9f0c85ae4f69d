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
from rich.table import Table

from ..results.record import Record
from .board import groups, leaderboard_frame, rank


def _num(value: Any, spec: str, scale: float = 1.0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return format(value * scale, spec)


def _accuracy(row: pd.Series) -> str:
    if row["n"] == 0:
        return "-"
    std = f"±{100 * row['top1_std']:.2f}" if row["top1_std"] is not None and pd.notna(row["top1_std"]) else ""
    return f"{100 * row['top1_mean']:.2f}{std} ({row['n']})"


# (header, cell, justify) in order of importance: the last ones are dropped first when narrow.
Column = tuple[str, Callable[[pd.Series], str], str]
COLUMNS: list[Column] = [
    ("#", lambda r: str(r["rank"]), "right"),
    ("case", lambda r: r["case_id"] + (" [FAILED]" if r["failed"] else ""), "left"),
    ("top-1 % (±sd, n)", _accuracy, "right"),
    ("train/s", lambda r: _num(r["train_samples_per_s"], ",.1f") + ("*" if r["train_path"] == "cached_features" else ""), "right"),
    ("P", lambda r: "★" if r["pareto"] else "", "center"),
    ("gain pp", lambda r: _num(r["transfer_gain"], "+.2f", 100), "right"),
    ("trained %", lambda r: _num(r["trainable_fraction"], ".2f", 100), "right"),
    ("eval/s", lambda r: _num(r["eval_samples_per_s"], ",.1f"), "right"),
    ("peak MB", lambda r: _num(r["peak_mb"], ",.0f"), "right"),
    ("wall s", lambda r: _num(r["wall_s"], ".1f"), "right"),
    ("params M", lambda r: _num(r["params_total"], ".2f", 1e-6), "right"),
]
CASE_FOLD_WIDTH = 36
FOOTNOTE = ("P ★: Pareto front of accuracy vs train throughput · * head-only train/s of a probe on cached features "
            "(not on the front) · gain: vs random init")


def table_cells(board: pd.DataFrame) -> tuple[list[Column], list[list[str]]]:
    board = board.assign(rank=range(1, len(board) + 1))
    return COLUMNS, [[cell(row) for _, cell, _ in COLUMNS] for _, row in board.iterrows()]


def fit_columns(cells: list[list[str]], width: int) -> list[int]:
    """Indices of the columns to show: drop from the end of COLUMNS until the table fits."""
    widths = [max([len(COLUMNS[i][0])] + [len(row[i]) for row in cells]) + 3 for i in range(len(COLUMNS))]
    widths[1] = min(widths[1], CASE_FOLD_WIDTH + 3)  # long case ids fold onto a second line
    keep = list(range(len(COLUMNS)))
    while sum(widths[i] for i in keep) > width and len(keep) > 3:
        keep.pop()
    return keep


def rich_table(board: pd.DataFrame, title: str, width: int) -> Table:
    columns, cells = table_cells(board)
    keep = fit_columns(cells, width)
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, caption=FOOTNOTE,
                  caption_justify="left")
    for i in keep:
        header, _, justify = columns[i]
        table.add_column(header, justify=justify, overflow="fold" if header == "case" else "ellipsis",  # type: ignore[arg-type]
                         no_wrap=header != "case")
    for row, failed in zip(cells, board["failed"]):
        table.add_row(*[row[i] for i in keep], style="red" if failed else None)
    return table


def print_board(console: Console, board: pd.DataFrame, title: str, group_by: Optional[list[str]] = None,
                sort: str = "accuracy", show_errors: bool = True) -> None:
    for name, part in groups(board, group_by or []):
        ranked = rank(part, sort)
        console.print(rich_table(ranked, f"{title} · {name}" if name else title, console.width))
        for _, row in ranked[ranked["failed"]].iterrows() if show_errors else ():
            console.print(f"[red]{row['case_id']} failed:[/] {row['error']}", highlight=False)


def markdown_board(board: pd.DataFrame, title: str, sort: str = "accuracy", group_by: Optional[list[str]] = None) -> str:
    out = []
    for name, part in groups(board, group_by or []):
        columns, cells = table_cells(rank(part, sort))
        out += [f"### {title}" + (f" · {name}" if name else ""), "",
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
            phase = r.error.phase if r.error else None
            console.print(f"[red]{r.run_key} failed during {phase}:[/] {r.error_message}", highlight=False)

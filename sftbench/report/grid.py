"""The grid view: per dataset, backbones x strategies, top-1 mean ± sd (n) in each cell.

It answers the two questions users bring ("which backbone?", "how much should I train?") at a
glance. ◆ marks the best strategy of a backbone (its row), ▲ the best backbone of a strategy
(its column); the last column and the last row name them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import pandas as pd
from rich import box
from rich.table import Table
from rich.text import Text

from .escape import terminal_text

ROW_BEST, COLUMN_BEST = "◆", "▲"
CAPTION = f"{ROW_BEST} best strategy for the backbone · {COLUMN_BEST} best backbone for the strategy · top-1 %"


@dataclass
class Grid:
    dataset: str
    backbones: list[str]
    strategies: list[str]
    mean: pd.DataFrame  # backbone x strategy, top-1 in [0, 1]
    std: pd.DataFrame
    n: pd.DataFrame

    def cell(self, backbone: str, strategy: str) -> str:
        mean = self.mean.at[backbone, strategy]
        if pd.isna(mean):
            return "-"
        std, n = self.std.at[backbone, strategy], int(self.n.at[backbone, strategy])
        sd = f" ± {100 * std:.2f}" if pd.notna(std) else ""
        marks = ("" if backbone != self.best_backbone(strategy) else f" {COLUMN_BEST}") + \
                ("" if strategy != self.best_strategy(backbone) else f" {ROW_BEST}")
        return f"{100 * mean:.2f}{sd} ({n}){marks}"

    def best_strategy(self, backbone: str) -> Optional[str]:
        row = self.mean.loc[backbone].dropna()
        return str(row.idxmax()) if len(row) else None

    def best_backbone(self, strategy: str) -> Optional[str]:
        column = self.mean[strategy].dropna()
        return str(column.idxmax()) if len(column) else None


def grids(board: pd.DataFrame) -> list[Grid]:
    ok = board[~board["failed"] & board["top1_mean"].notna()]
    out = []
    for dataset, part in ok.groupby("dataset", sort=True):
        pivot = lambda column: part.pivot_table(index="backbone_shown", columns="strategy", values=column,  # noqa: E731
                                                aggfunc="first", dropna=False)
        mean = pivot("top1_mean")
        out.append(Grid(str(dataset), list(mean.index), list(mean.columns), mean,
                        pivot("top1_std").reindex_like(mean), pivot("n").reindex_like(mean)))
    return out


def rich_grid(grid: Grid, title: str) -> Table:
    table = Table(title=f"{title} · dataset {grid.dataset}", title_justify="left", box=box.SIMPLE_HEAD,
                  caption=CAPTION, caption_justify="left", pad_edge=False)
    table.add_column("backbone", no_wrap=True)
    for strategy in grid.strategies:
        table.add_column(strategy, justify="right", no_wrap=True)
    table.add_column("best strategy", no_wrap=True)
    for backbone in grid.backbones:
        cells = [_styled(grid, backbone, s) for s in grid.strategies]
        table.add_row(terminal_text(backbone), *cells, terminal_text(grid.best_strategy(backbone) or "-"))
    table.add_section()
    table.add_row(terminal_text("best backbone", style="italic"), *[terminal_text(grid.best_backbone(s) or "-") for s in grid.strategies],
                  terminal_text(""))
    return table


def _styled(grid: Grid, backbone: str, strategy: str) -> Text:
    style = " ".join(part for part, hit in (("bold", strategy == grid.best_strategy(backbone)),
                                            ("green", backbone == grid.best_backbone(strategy))) if hit)
    return terminal_text(grid.cell(backbone, strategy), style=style or "")


def markdown_grid(grid: Grid, title: str) -> str:
    head = ["backbone", *grid.strategies, "best strategy"]
    lines = [f"### {title} · dataset {grid.dataset}", "", "| " + " | ".join(head) + " |",
             "|---|" + "---:|" * len(grid.strategies) + "---|"]
    for backbone in grid.backbones:
        cells = []
        for strategy in grid.strategies:
            text = grid.cell(backbone, strategy)
            cells.append(f"**{text}**" if strategy == grid.best_strategy(backbone) else text)
        lines.append("| " + " | ".join([backbone, *cells, grid.best_strategy(backbone) or "-"]) + " |")
    lines.append("| *best backbone* | " + " | ".join(grid.best_backbone(s) or "-" for s in grid.strategies) + " | |")
    return "\n".join(lines + ["", CAPTION, ""])


def csv_grid(grid: Grid) -> pd.DataFrame:
    """Rows: backbones then a 'best backbone' row; columns: dataset, backbone, one top-1 % column
    per strategy, best strategy."""
    rows = []
    for backbone in grid.backbones:
        values = {s: _percent(grid.mean.at[backbone, s]) for s in grid.strategies}
        rows.append({"dataset": grid.dataset, "backbone": backbone, **values,
                     "best_strategy": grid.best_strategy(backbone)})
    rows.append({"dataset": grid.dataset, "backbone": "best backbone",
                 **{s: grid.best_backbone(s) for s in grid.strategies}, "best_strategy": None})
    return pd.DataFrame(rows)


def _percent(value: float) -> Optional[float]:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else round(100 * value, 4)

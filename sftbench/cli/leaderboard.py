"""`sftbench leaderboard`: rank cases from result files as a table, Markdown, CSV or JSON, and plots."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import pandas as pd
import typer

from .. import options as shared
from ..errors import ConfigError
from ..report.board import SORT_KEYS, leaderboard_frame, rank
from ..report.leaderboard import markdown_board, print_board
from ..results.record import Record
from ..results.selection import select_runs
from ..results.store import read_records, result_files
from ..suite.discovery import find_suite
from ..suite.loader import load_suite
from .app import app, console, err_console, user_errors

FORMATS = ("table", "markdown", "csv", "json")
AXES = ("suite", "dataset", "strategy", "backbone")


@app.command()
@user_errors
def leaderboard(
    results: Optional[list[Path]] = typer.Argument(None, help="Result files or folders (default: --suite's runs)."),
    suite: Optional[str] = typer.Option(None, "--suite", "-s", help="Every run of this suite under --out."),
    out: Path = typer.Option(Path(shared.OUT.default), help="Where runs are stored."),
    dataset: Optional[str] = typer.Option(None, help="Only this dataset (label)."),
    group_by: Optional[str] = typer.Option(None, help="Comma-separated: suite, dataset, strategy, backbone."),
    sort: str = typer.Option("accuracy", help="accuracy | throughput | efficiency (accuracy x train samples/s)."),
    fmt: str = typer.Option("table", "--format", help="table | markdown | csv | json"),
    all_runs: bool = typer.Option(False, help="Pool the seeds of every run instead of each case's latest run."),
    plot: Optional[Path] = typer.Option(None, help="Write accuracy vs throughput as a PNG here."),
    plot_curves: Optional[Path] = typer.Option(None, help="Write per-epoch validation accuracy as a PNG here."),
) -> None:
    """Rank cases: accuracy (mean ± std over seeds), transfer gain, speed, memory, Pareto front."""
    axes = _check_options(sort, fmt, group_by)
    records = _records(results, suite, out)
    board = leaderboard_frame(records, all_runs)
    if dataset is not None:
        board = board[board["dataset"] == dataset]
        if board.empty:
            raise ConfigError(f"--dataset {dataset!r} matches no case in these results")
    title = f"leaderboard · {', '.join(sorted(board['suite'].unique()))}"
    _print(board, title, axes, sort, fmt)
    _plots(board, records, title, all_runs, plot, plot_curves)


def _check_options(sort: str, fmt: str, group_by: Optional[str]) -> list[str]:
    if sort not in SORT_KEYS:
        raise ConfigError(f"--sort {sort!r} is unknown; use accuracy, throughput or efficiency")
    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt!r} is unknown; use table, markdown, csv or json")
    axes = [a.strip() for a in group_by.split(",")] if group_by else []
    if any(a not in AXES for a in axes):
        raise ConfigError(f"--group-by {group_by!r}: use a comma-separated list of suite, dataset, strategy, backbone")
    return axes


def _records(results: Optional[list[Path]], suite: Optional[str], out: Path) -> list[Record]:
    paths = list(results or [])
    if suite:
        paths.append(out / load_suite(find_suite(suite)).name)
    files = result_files(paths or [out])
    if not files:
        raise ConfigError(f"no result files in {', '.join(map(str, paths or [out]))}; run `sftbench run` first")
    return [r for f in files for r in read_records(f)]


def _print(board: pd.DataFrame, title: str, axes: list[str], sort: str, fmt: str) -> None:
    if fmt == "table":
        print_board(console, board, title, axes, sort)
    elif fmt == "markdown":
        console.print(markdown_board(board, title, sort, axes), markup=False, highlight=False, soft_wrap=True)
    elif fmt == "csv":
        sys.stdout.write(rank(board, sort).to_csv(index=False))
    else:
        sys.stdout.write(rank(board, sort).to_json(orient="records", indent=2) + "\n")


def _plots(board: pd.DataFrame, records: list[Record], title: str, all_runs: bool, plot: Optional[Path],
           plot_curves: Optional[Path]) -> None:
    from ..report.plots import (  # deferred: matplotlib is heavy
        accuracy_vs_throughput,
        validation_curves,
    )

    if plot:
        accuracy_vs_throughput(board, plot, title)
        err_console.print(f"wrote {plot}")
    if plot_curves:
        keep = set(board["case_id"])
        validation_curves([r for r in select_runs(records, all_runs) if r.case_id in keep], plot_curves, title)
        err_console.print(f"wrote {plot_curves}")

"""`sftbench leaderboard`: rank cases from result files as a table, Markdown, CSV or JSON, and plots."""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pandas as pd
import typer

from .. import options as shared
from ..errors import ConfigError
from ..regression.diff import diff_runs
from ..report.board import SORT_KEYS, leaderboard_frame, rank
from ..report.depth import depth_curves, markdown_depth, rich_depth
from ..report.diff import json_diff, markdown_diff, print_diff
from ..report.grid import csv_grid, grids, markdown_grid, rich_grid
from ..report.leaderboard import markdown_board, print_board
from ..report.sweep_choice import print_choices
from ..results.record import Record
from ..results.selection import on_node, select_runs
from ..results.store import read_records, result_files
from ..results.sweep_choice import choices, selected
from ..suite.discovery import find_suite
from ..suite.loader import load_suite
from .app import AllPointsOpt, NodeOpt, app, console, err_console, user_errors

FORMATS = ("table", "markdown", "csv", "json")
AXES = ("suite", "dataset", "strategy", "backbone", "node")


@app.command()
@user_errors
def leaderboard(
    results: Optional[list[Path]] = typer.Argument(None, help="Result files or folders (default: --suite's runs)."),
    suite: Optional[str] = typer.Option(None, "--suite", "-s", help="Every run of this suite under --out."),
    out: Path = typer.Option(Path(shared.OUT.default), help="Where runs are stored."),
    dataset: Optional[str] = typer.Option(None, help="Only this dataset (label)."),
    node: NodeOpt = None,
    group_by: Optional[str] = typer.Option(None, help="Comma-separated: suite, dataset, strategy, backbone, node "
                                           "(node: one row per machine that ran a case; speeds are not pooled)."),
    sort: str = typer.Option("accuracy", help="accuracy | throughput | efficiency (accuracy x train samples/s)."),
    fmt: str = typer.Option("table", "--format", help="table | markdown | csv | json"),
    all_runs: bool = typer.Option(False, help="Pool the seeds of every run instead of each case's latest run."),
    plot: Optional[Path] = typer.Option(None, help="Write accuracy vs cost (img/s of train wall time) as a PNG."),
    plot_curves: Optional[Path] = typer.Option(None, help="Write per-epoch validation accuracy as a PNG here."),
    plot_grid: Optional[Path] = typer.Option(None, help="Write the backbone x strategy grid as a heatmap PNG."),
    pivot: bool = typer.Option(False, "--pivot", help="The grid view: backbones x strategies per dataset."),
    view: str = typer.Option("list", help="list | grid (the same as --pivot)."),
    compare: Optional[tuple[str, str]] = typer.Option(
        None, help="Diff two runs (run ids under --out, or result files): top-1 A, B, Δ, a paired test, speed."),
    all_points: AllPointsOpt = False,
    depth: bool = typer.Option(False, "--depth", help="The depth curve per backbone × dataset: top-1 from the probe "
                               "through last_k to full, train time, and the shallowest depth within the seed noise."),
    plot_depth: Optional[Path] = typer.Option(None, help="Write the depth curves as a PNG here."),
) -> None:
    """Rank cases: accuracy (mean ± std over seeds), transfer gain, speed, memory, Pareto front."""
    axes = _check_options(sort, fmt, group_by)
    if compare:
        return _compare(compare, suite, out, fmt)
    as_run = _records(results, suite, out)
    as_run = on_node(as_run, node) if node else as_run
    records = selected(as_run, all_points)
    if depth or plot_depth:
        return _depth(records, fmt, depth, plot_depth)
    board = leaderboard_frame(records, all_runs, by_node="node" in axes)
    if dataset is not None:
        board = board[board["dataset"] == dataset]
        if board.empty:
            raise ConfigError(f"--dataset {dataset!r} matches no case in these results")
    title = f"leaderboard · {', '.join(sorted(board['suite'].unique()))}"
    if pivot or _grid_view(view):
        _print_grid(board, title, fmt)
    else:
        _print(board, title, axes, sort, fmt)
    if fmt == "table" and not all_points:
        print_choices(console, choices(as_run))
    _plots(board, records, title, all_runs, Plots(plot, plot_curves, plot_grid))


def _depth(records: list[Record], fmt: str, show: bool, plot: Optional[Path]) -> None:
    curves = depth_curves(records)
    if not curves:
        raise ConfigError("no backbone × dataset in these results has two depths (linear_probe, last_k, full); "
                          "run a suite with the `depth` strategy entry, e.g. benchmarks/depth.yaml")
    if show and fmt == "markdown":
        console.print("\n".join(markdown_depth(c) for c in curves), markup=False, highlight=False, soft_wrap=True)
    elif show:
        for curve in curves:
            console.print(rich_depth(curve))
    if plot:
        from ..report import plots as draw  # deferred: matplotlib is heavy

        draw.save(draw.depth_plot(curves, "depth: how many stages to fine-tune"), plot)
        console.print(f"plot: {plot}")


def _grid_view(view: str) -> bool:
    if view not in ("list", "grid"):
        raise ConfigError(f"--view {view!r} is unknown; use list or grid")
    return view == "grid"


def _print_grid(board: pd.DataFrame, title: str, fmt: str) -> None:
    found = grids(board)
    if fmt == "table":
        for grid in found:
            console.print(rich_grid(grid, title))
    elif fmt == "markdown":
        console.print("\n".join(markdown_grid(g, title) for g in found), markup=False, highlight=False, soft_wrap=True)
    elif fmt == "csv":
        sys.stdout.write(pd.concat([csv_grid(g) for g in found]).to_csv(index=False))
    else:
        sys.stdout.write(pd.concat([csv_grid(g) for g in found]).to_json(orient="records", indent=2) + "\n")


def _compare(runs: tuple[str, str], suite: Optional[str], out: Path, fmt: str) -> None:
    (name_a, a), (name_b, b) = (_run(name, suite, out) for name in runs)
    diff = diff_runs(a, b)
    if fmt == "markdown":
        console.print(markdown_diff(diff, name_a, name_b), markup=False, highlight=False, soft_wrap=True)
    elif fmt in ("json", "csv"):
        sys.stdout.write(json_diff(diff, name_a, name_b))
    else:
        print_diff(console, diff, name_a, name_b)


def _run(name: str, suite: Optional[str], out: Path) -> tuple[str, list[Record]]:
    """A results file, or a run id under --out (in --suite's folder, or in any suite's)."""
    path = Path(name)
    if not path.is_file():
        folders = [out / load_suite(find_suite(suite)).name] if suite else sorted(p for p in out.glob("*") if p.is_dir())
        found = [f / f"{name}.jsonl" for f in folders if (f / f"{name}.jsonl").is_file()]
        if len(found) != 1:
            where = "no" if not found else f"{len(found)}"
            raise ConfigError(f"--compare {name!r}: {where} results file matches under {out}; pass a file path, "
                              "or --suite to pick the suite")
        path = found[0]
    return path.stem, list(read_records(path))


def _check_options(sort: str, fmt: str, group_by: Optional[str]) -> list[str]:
    if sort not in SORT_KEYS:
        raise ConfigError(f"--sort {sort!r} is unknown; use accuracy, throughput or efficiency")
    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt!r} is unknown; use table, markdown, csv or json")
    axes = [a.strip() for a in group_by.split(",")] if group_by else []
    if any(a not in AXES for a in axes):
        raise ConfigError(f"--group-by {group_by!r}: use a comma-separated list of suite, dataset, strategy, backbone, "
                          "node")
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


@dataclass(frozen=True)
class Plots:
    accuracy_vs_cost: Optional[Path]
    curves: Optional[Path]
    grid: Optional[Path]


def _plots(board: pd.DataFrame, records: list[Record], title: str, all_runs: bool, plots: Plots) -> None:
    if not any((plots.accuracy_vs_cost, plots.curves, plots.grid)):
        return
    from ..report import plots as draw  # deferred: matplotlib is heavy

    if plots.accuracy_vs_cost:
        draw.save(draw.accuracy_vs_cost(board, title), plots.accuracy_vs_cost)
    if plots.curves:
        keep = set(board["case_id"])
        draw.save(draw.validation_curves([r for r in select_runs(records, all_runs) if r.case_id in keep], title),
                  plots.curves)
    if plots.grid:
        draw.save(draw.grid_heatmap(grids(board), title), plots.grid)
    for path in (plots.accuracy_vs_cost, plots.curves, plots.grid):
        if path:
            err_console.print(f"wrote {path}")

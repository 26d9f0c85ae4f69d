"""`sftbench history add|show` and `sftbench publish`: every run kept, its change points, a dashboard."""
from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import Optional

import typer

from ..errors import ConfigError
from ..history.changepoints import detect
from ..history.db import DEFAULT_DB, METRICS, History
from ..history.series import build_series
from ..report.baseline_band import band_for, load_suite_baselines
from ..report.dashboard import publish as write_dashboard
from ..report.history import history_json, history_markdown, print_history
from ..results.store import parse_records, read_bytes, result_files
from .app import app, console, user_errors

history_app = typer.Typer(help="Keep every run in a history database; show series and change points.",
                          no_args_is_help=True)
app.add_typer(history_app, name="history")
DbOpt = typer.Option(DEFAULT_DB, "--db", help="The history database (SQLite; default results/history.db).")


def add_results(db: Path, paths: list[Path]) -> tuple[int, int, int]:
    """Add results files (or folders of them); (files added, records added, files already there)."""
    history = History.open(db)
    try:
        files = records = seen = 0
        for path in result_files(paths):
            content = read_bytes(path)  # one read: the records added are exactly the bytes hashed
            added = history.add_file(path, content, list(parse_records(io.BytesIO(content), path)))  # a bad file adds nothing
            files, records, seen = files + added.files, records + added.records, seen + added.skipped_files
        return files, records, seen
    finally:
        history.close()


@history_app.command("add")
@user_errors
def history_add(results: list[Path] = typer.Argument(..., help="Results files (.jsonl) or folders of them."),
                db: Path = DbOpt) -> None:
    """Put records into the history database; a file added before adds nothing."""
    files, records, seen = add_results(db, results)
    console.print(f"{db}: added {records} record(s) from {files} file(s)"
                  + (f"; {seen} file(s) were already there" if seen else ""), highlight=False)


@history_app.command("show")
@user_errors
def history_show(db: Path = DbOpt, suite: Optional[str] = typer.Option(None, help="Only this suite."),
                 case: Optional[str] = typer.Option(None, "--case", help="Only this case id."),
                 metric: Optional[str] = typer.Option(None, help="top1 | train_throughput | eval_throughput | peak_mb"),
                 format: str = typer.Option("table", "--format", help="table | markdown | json")) -> None:
    """Each case's series over runs (mean ± seed sd), environment changes and change points."""
    if metric is not None and metric not in METRICS:
        raise ConfigError(f"--metric {metric!r} is not one of {', '.join(METRICS)}; pick one of them")
    if format not in ("table", "markdown", "json"):
        raise ConfigError(f"--format {format!r} is not table, markdown or json; pick one of them")
    series, changes = _analyse(db, suite, case, [metric] if metric else list(METRICS))
    if format == "json":
        sys.stdout.write(history_json(series, changes) + "\n")
    elif format == "markdown":
        sys.stdout.write(history_markdown(series, changes) + "\n")
    else:
        print_history(console, series, changes)


@app.command("publish")
@user_errors
def publish(out: Path = typer.Option(..., "--out", help="The dashboard's folder: new, empty, or an earlier dashboard."),
            db: Path = DbOpt, suite: Optional[str] = typer.Option(None, help="Only this suite."),
            baselines_dir: Path = typer.Option(Path("baselines"), help="Committed baselines, drawn as a band "
                                               "behind each series (absent: no band)."),
            commit_url: Optional[str] = typer.Option(None, help="Link for each point, e.g. "
                                                     "https://github.com/ORG/REPO/commit/{commit}")) -> None:
    """Write the history as a static HTML dashboard that opens from the file system."""
    series, changes = _analyse(db, suite, None, list(METRICS))
    baselines = load_suite_baselines(baselines_dir, {one.suite for one in series})
    bands = {one.key: band for one in series if (band := band_for(one, baselines))}
    pages = write_dashboard(series, changes, out, commit_url, bands=bands)
    console.print(f"wrote {len(pages)} page(s) to {out} ({len(changes)} change point(s), {len(bands)} of "
                  f"{len(series)} series with a baseline band from {baselines_dir}); open {pages[0]}", highlight=False)


def _analyse(db: Path, suite: Optional[str], case: Optional[str], metrics: list[str]):
    history = History.open(db, readonly=True)
    try:
        series = build_series(history.rows(suite, case), metrics)
    finally:
        history.close()
    if not series:
        raise ConfigError(f"{db} holds no finished record" + (f" of suite {suite!r}" if suite else "")
                          + (f" for case {case!r}" if case else "") + "; add runs with `sftbench history add`")
    return series, [change for one in series for change in detect(one)]

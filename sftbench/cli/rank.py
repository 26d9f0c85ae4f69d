"""`sftbench rank`: transferability scores for every candidate backbone, checked against fine-tunes."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .. import options as shared
from ..engine.device import device_for_suite
from ..errors import ConfigError
from ..report import rank as report
from ..report.plots import save, score_vs_accuracy
from ..results.selection import latest_per_run_key
from ..results.store import read_records, result_files
from ..results.sweep_choice import selected
from ..selection.agreement import fine_tuned
from ..selection.rank import Candidate, candidate_cases, rank_cases
from ..suite.cases import expand
from ..suite.discovery import DEFAULT_SUITE, find_suite
from ..suite.loader import load_suite
from .app import OutOpt, SuiteOpt, app, console, err_console, user_errors

FORMATS = ("table", "markdown", "csv", "json")


@app.command()
@user_errors
def rank(
    suite: SuiteOpt = DEFAULT_SUITE,
    dataset: Optional[list[str]] = typer.Option(None, help="Only these datasets (label or name); repeatable."),
    device: str = typer.Option(shared.DEVICE.default, help=shared.DEVICE.help),
    data_root: Optional[Path] = typer.Option(None, help=shared.DATA_ROOT.help),
    out: OutOpt = Path(shared.OUT.default),
    results: Optional[list[Path]] = typer.Option(None, help="Fine-tuned results to check against (default: --out/SUITE)."),
    truth: Optional[str] = typer.Option(None, help="The strategy whose accuracy is the truth (default: full, else lp_ft)."),
    format_: str = typer.Option("table", "--format", help="table | markdown | csv | json"),
    plot: Optional[Path] = typer.Option(None, help="Save score vs fine-tuned accuracy, one panel per dataset and score."),
) -> None:
    """Score every backbone of a suite for each dataset from frozen features, without fine-tuning."""
    if format_ not in FORMATS:
        raise ConfigError(f"--format {format_!r} is unknown; use one of {', '.join(FORMATS)}")
    path = find_suite(suite)
    spec = load_suite(path)
    every_case = expand(spec, source=str(path))
    cases = candidate_cases(every_case, dataset)
    if not cases:
        raise ConfigError(f"no dataset of suite {spec.name!r} matches {dataset}; use a dataset label of the suite")
    torch_device = device_for_suite(spec.name, spec.requires_gpu, device)
    candidates = rank_cases(cases, torch_device, str(data_root) if data_root else None, _progress)
    truth_by_dataset = _truth(results or [out / spec.name], truth, {c.strategy.label for c in every_case})
    _emit(candidates, truth_by_dataset, format_)
    if plot:
        save(score_vs_accuracy(report.long_frame(candidates, truth_by_dataset), f"{spec.name}: scores vs fine-tuned"),
             plot)
        console.print(f"plot: {plot}")


def _progress(candidate: Candidate) -> None:
    source = f"{candidate.computed} images forwarded in {candidate.feature_seconds:.1f}s" if candidate.computed \
        else "features from the cache"
    err_console.print(f"  {candidate.dataset} · {candidate.backbone}: {source}", highlight=False)  # stdout: the result


def _truth(paths: list[Path], strategy: Optional[str], labels: set[str]) -> dict[str, dict[str, float]]:
    files = result_files([p for p in paths if p.exists()])
    records = selected(latest_per_run_key(r for f in files for r in read_records(f)))  # a sweep: its chosen points
    chosen = strategy or next((s for s in ("full", "lp_ft") if s in labels), None)
    if strategy and strategy not in labels:
        raise ConfigError(f"--truth {strategy!r} is not a strategy of the suite; use one of {sorted(labels)}")
    return fine_tuned(records, chosen) if chosen else {}


def _emit(candidates: list[Candidate], truth: dict[str, dict[str, float]], format_: str) -> None:
    if format_ == "table":
        for table in report.rich_tables(candidates, truth):
            console.print(table)
        if not truth:
            console.print("no fine-tuned results found: run the suite's fine-tune strategy to check the scores")
    elif format_ == "markdown":
        typer.echo(report.markdown(candidates, truth), nl=False)
    elif format_ == "csv":
        typer.echo(report.long_frame(candidates, truth).to_csv(index=False), nl=False)
    else:
        typer.echo(report.as_json(candidates, truth))

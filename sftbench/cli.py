"""Thin typer commands over the library. The only place (with the pytest plugin) that picks exit codes.

Exit codes: 0 success (check: every case PASS, IMPROVED, NOISE or NEW); 1 a regression (with
--strict also MISSING or INCOMPARABLE); 2 usage or configuration error; 3 a case failed to run
(takes precedence over 1); 130 interrupted.
"""
from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Optional, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from . import options as shared
from .errors import ConfigError, SftbenchError
from .options import parse_seeds
from .suites import DEFAULT_SUITE

EXIT_OK, EXIT_REGRESSION, EXIT_CONFIG, EXIT_CASE_FAILED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Benchmark and regression suite for transfer learning.")
# Piped output (CI logs) gets 160 columns instead of rich's 80, so tables are not truncated.
console = Console(width=None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 160)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() or os.environ.get("COLUMNS") else 160)
F = TypeVar("F", bound=Callable[..., Any])


def user_errors(func: F) -> F:
    """Library errors become one red sentence and exit code 2, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except SftbenchError as err:
            err_console.print(f"[bold red]error:[/] {err}", highlight=False, soft_wrap=True)
            raise typer.Exit(EXIT_CONFIG) from None

    return wrapper  # type: ignore[return-value]


# Options that several commands take: declared once.
SuiteOpt = Annotated[str, typer.Option("--suite", "-s", help="Suite name (benchmarks/<name>.yaml) or path.")]
OutOpt = Annotated[Path, typer.Option(help=shared.OUT.help)]
ResultsOpt = Annotated[Optional[list[Path]], typer.Option(help="Result files or folders (default: the suite's latest run).")]
BaselineOpt = Annotated[Optional[Path], typer.Option(help="Baseline file (default: baselines/<suite>/<hardware>.json).")]
JunitOpt = Annotated[Optional[Path], typer.Option("--junit-xml", help="Write JUnit XML here (run: with --check).")]
MarkdownOpt = Annotated[Optional[Path], typer.Option(help="Write a Markdown report here, e.g. $GITHUB_STEP_SUMMARY (run: with --check).")]
JsonOpt = Annotated[Optional[Path], typer.Option("--json", help="Write the verdicts as JSON here (run: with --check).")]
StrictOpt = Annotated[bool, typer.Option(help="MISSING and INCOMPARABLE cases fail the check (exit 1).")]


@app.command()
@user_errors
def run(
    suite: SuiteOpt = DEFAULT_SUITE,
    device: str = typer.Option(shared.DEVICE.default, help=shared.DEVICE.help),
    seeds: Optional[str] = typer.Option(None, help=shared.SEEDS.help),
    epochs: Optional[int] = typer.Option(None, min=1, help="Override every case's epochs."),
    data_root: Optional[Path] = typer.Option(None, help=shared.DATA_ROOT.help),
    out: OutOpt = Path(shared.OUT.default),
    resume: bool = typer.Option(False, help="Continue the latest run of this suite (or --run-id), skipping finished cases."),
    run_id: Optional[str] = typer.Option(None, help="Name the run (default: a UTC timestamp)."),
    limit_cases: Optional[int] = typer.Option(None, min=1, help="Run only the first N cases."),
    check_: bool = typer.Option(False, "--check", help="Compare with the baseline afterwards (exit 1 on regression)."),
    confirm: int = typer.Option(0, min=0, help="With --check: re-run REGRESSED cases with N extra seeds first."),
    baseline: BaselineOpt = None,
    junit_xml: JunitOpt = None,
    markdown: MarkdownOpt = None,
    json_out: JsonOpt = None,
    strict: StrictOpt = False,
) -> None:
    """Fine-tune every case of a suite and record one JSON line per case."""
    from . import runner
    from .progress import RichProgress
    from .report import print_summary
    from .spec import expand, load_suite
    from .suites import find_suite
    from .summary import latest_per_run_key

    path = find_suite(suite)
    spec = load_suite(path)
    cases = expand(spec, source=str(path), seeds=parse_seeds(seeds), epochs=epochs)[:limit_cases]
    options = runner.RunOptions(runner.resolve_device(device), str(data_root) if data_root else None, path.parent)
    if spec.requires_gpu and options.device.type != "cuda" and device == "auto":
        raise ConfigError(f"suite {spec.name!r} needs a GPU (requires_gpu: true) and none is visible; run it on a "
                          "GPU machine, or pass --device cpu to run it on the CPU anyway")
    store = _pick_store(out, spec.name, run_id, resume)
    console.print(f"[bold]{spec.name}[/]: {len(cases)} case(s) on {options.device} -> {store.path}")
    try:
        with RichProgress(console, len(cases)) as progress:
            runner.run_cases(cases, store, options, progress, resume=resume)
        keys = {c.run_key for c in cases}
        records = [r for r in latest_per_run_key(store.records()) if r["run_key"] in keys]
        print_summary(console, records, f"{spec.name} · run {store.run_id}")
        if check_:
            gate = GateOptions(baseline, confirm, junit_xml, markdown, json_out, strict)
            code = _gate(spec.name, path, cases, records, gate, store, options)
            raise typer.Exit(code)
    except KeyboardInterrupt:
        err_console.print(f"interrupted: finished cases are kept in {store.path}; "
                          f"continue with `sftbench run --suite {suite} --resume --run-id {store.run_id}`")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    if any(r["status"] != "ok" for r in records):
        raise typer.Exit(EXIT_CASE_FAILED)


@dataclass(frozen=True)
class GateOptions:
    """What `check` and `run --check` share: which baseline, how to confirm, where to report."""

    baseline: Optional[Path] = None
    confirm: int = 0
    junit: Optional[Path] = None
    markdown: Optional[Path] = None
    json: Optional[Path] = None
    strict: bool = False


def _gate(suite: str, suite_path: Path, cases: list[Any], records: list[dict[str, Any]], gate: GateOptions,
          store: Any = None, options: Any = None) -> int:
    """Verdicts for the records (confirming regressions by re-running when asked), reports, exit code."""
    from .compare import exit_code
    from .gate import confirm_regressions, default_baselines_dir, hardware_of, pick_baseline, verdicts_for
    from .verdict_report import print_verdicts, write_reports

    base = pick_baseline(gate.baseline, default_baselines_dir(suite_path), suite, hardware_of(records))
    verdicts = verdicts_for(cases, records, base)
    confirm = gate.confirm
    if confirm and any(v.status.value == "REGRESSED" for v in verdicts):
        from .progress import RichProgress

        regressed = sum(v.status.value == "REGRESSED" for v in verdicts)
        console.print(f"confirming {regressed} regressed case(s) with {confirm} extra seed(s) each")
        with RichProgress(console, regressed * confirm) as progress:
            verdicts = confirm_regressions(verdicts, cases, store, options, confirm, base, progress)
    where = base.path if base else "no baseline"
    print_verdicts(console, verdicts, f"{suite} vs {where}")
    write_reports(verdicts, suite, gate.junit, gate.markdown, gate.json)
    return exit_code(verdicts, gate.strict)


@app.command()
@user_errors
def check(
    suite: SuiteOpt = DEFAULT_SUITE,
    results: ResultsOpt = None,
    out: OutOpt = Path(shared.OUT.default),
    baseline: BaselineOpt = None,
    junit_xml: JunitOpt = None,
    markdown: MarkdownOpt = None,
    json_out: JsonOpt = None,
    strict: StrictOpt = False,
) -> None:
    """Compare results with the baseline: one verdict per case; exit 1 on regression, 3 on a failed case."""
    from .gate import load_records
    from .spec import expand, load_suite
    from .suites import find_suite

    path = find_suite(suite)
    spec = load_suite(path)
    records = load_records(results or [], out, spec.name)
    cases = expand(spec, source=str(path))
    code = _gate(spec.name, path, cases, records, GateOptions(baseline, 0, junit_xml, markdown, json_out, strict))
    raise typer.Exit(code)


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
    from .leaderboard import SORT_KEYS, leaderboard_frame, rank, select_runs
    from .report import markdown_board, print_board
    from .results import read_records, result_files

    if sort not in SORT_KEYS:
        raise ConfigError(f"--sort {sort!r} is unknown; use accuracy, throughput or efficiency")
    if fmt not in ("table", "markdown", "csv", "json"):
        raise ConfigError(f"--format {fmt!r} is unknown; use table, markdown, csv or json")
    axes = [a.strip() for a in group_by.split(",")] if group_by else []
    if any(a not in ("suite", "dataset", "strategy", "backbone") for a in axes):
        raise ConfigError(f"--group-by {group_by!r}: use a comma-separated list of suite, dataset, strategy, backbone")
    paths = list(results or [])
    if suite:
        from .spec import load_suite
        from .suites import find_suite

        name = load_suite(find_suite(suite)).name
        paths.append(out / name)
    files = result_files(paths or [out])
    if not files:
        raise ConfigError(f"no result files in {', '.join(map(str, paths or [out]))}; run `sftbench run` first")
    records = [r for f in files for r in read_records(f)]
    board = leaderboard_frame(records, all_runs)
    if dataset is not None:
        board = board[board["dataset"] == dataset]
        if board.empty:
            raise ConfigError(f"--dataset {dataset!r} matches no case in these results")
    title = f"leaderboard · {', '.join(sorted(board['suite'].unique()))}"
    if fmt == "table":
        print_board(console, board, title, axes, sort)
    elif fmt == "markdown":
        console.print(markdown_board(board, title, sort, axes), markup=False, highlight=False, soft_wrap=True)
    elif fmt == "csv":
        sys.stdout.write(rank(board, sort).to_csv(index=False))
    else:
        sys.stdout.write(rank(board, sort).to_json(orient="records", indent=2) + "\n")
    if plot:
        from .plots import accuracy_vs_throughput

        accuracy_vs_throughput(board, plot, title)
        err_console.print(f"wrote {plot}")
    if plot_curves:
        from .plots import validation_curves

        keep = set(board["case_id"])
        validation_curves([r for r in select_runs(records, all_runs) if r["case_id"] in keep], plot_curves, title)
        err_console.print(f"wrote {plot_curves}")


baseline_app = typer.Typer(help="Bless results as baselines.", no_args_is_help=True)
app.add_typer(baseline_app, name="baseline")


@baseline_app.command("update")
@user_errors
def baseline_update(
    suite: SuiteOpt = DEFAULT_SUITE,
    results: ResultsOpt = None,
    out: OutOpt = Path(shared.OUT.default),
    baselines_dir: Optional[Path] = typer.Option(None, help="Baselines root (default: baselines/ beside the suite's folder)."),
) -> None:
    """Write or refresh baselines/<suite>/<hardware>.json from results (all seeds of a case pooled)."""
    from .baselines import baseline_path, find_baseline, update_baseline, write_baseline
    from .gate import default_baselines_dir, hardware_of, load_records
    from .spec import load_suite
    from .suites import find_suite
    from .summary import summarise

    path = find_suite(suite)
    spec = load_suite(path)
    records = load_records(results or [], out, spec.name)
    hardware = hardware_of(records)
    root = baselines_dir or default_baselines_dir(path)
    updated, refused = update_baseline(find_baseline(root, spec.name, hardware), summarise(records), spec.name, hardware)
    target = baseline_path(root, spec.name, hardware)
    write_baseline(updated, target)
    console.print(f"wrote {len(updated.cases)} case(s) to {target}")
    for item in refused:
        err_console.print(f"[red]refused failed case[/] {item}")
    if refused:
        raise typer.Exit(EXIT_CASE_FAILED)


def _pick_store(out: Path, suite: str, run_id: Optional[str], resume: bool) -> "Any":
    from .results import Store, new_run_id

    if resume and run_id is None:
        latest = Store.latest(out, suite)
        if latest is None:
            raise ConfigError(f"--resume found no earlier run of {suite!r} under {out}; run without --resume first")
        return latest
    return Store.for_run(out, suite, run_id or new_run_id())


@app.command("list")
@user_errors
def list_(
    what: str = typer.Argument(..., help="suites | backbones | datasets | strategies"),
    pattern: str = typer.Option("*", help="Filter backbones with a wildcard, e.g. '*efficientnet*'."),
    source: str = typer.Option("timm", help="Backbones from timm or torchvision."),
) -> None:
    """List what a suite can name."""
    table = Table(title=what, title_justify="left")
    if what == "suites":
        from .spec import load_suite
        from .suites import available_suites

        table.add_column("suite"), table.add_column("path"), table.add_column("description")
        for name, path in available_suites().items():
            description = load_suite(path).description.strip()
            table.add_row(name, str(path), description.splitlines()[0] if description else "")
    elif what in ("datasets", "strategies"):
        from .datasets import DATASETS
        from .strategies import STRATEGIES

        registry: Any = DATASETS if what == "datasets" else STRATEGIES
        table.add_column("name"), table.add_column("parameters"), table.add_column("description")
        for entry in registry:
            params = getattr(entry.factory, "Params", None)
            default_bn = getattr(entry.factory, "default_bn", None)  # bn=None means the strategy's default
            shown = ", ".join(f"{k}={default_bn if k == 'bn' and f.default is None else f.default!r}"
                              for k, f in params.model_fields.items()) if params else "options"
            table.add_row(entry.name, shown, entry.description)
    elif what == "backbones":
        import fnmatch

        from .names import timm_models, torchvision_models
        from .offline_weights import OFFLINE_PACKAGES

        names = sorted(timm_models()) if source == "timm" else [f"torchvision:{n}" for n in sorted(torchvision_models())]
        table.add_column("backbone"), table.add_column("offline weights")
        for name in fnmatch.filter(names, pattern):
            table.add_row(name, OFFLINE_PACKAGES[name].pip_name if name in OFFLINE_PACKAGES else "")
    else:
        raise ConfigError(f"cannot list {what!r}; use suites, backbones, datasets or strategies")
    console.print(table)


def main() -> None:
    app(prog_name="sftbench")


if __name__ == "__main__":
    sys.exit(main())

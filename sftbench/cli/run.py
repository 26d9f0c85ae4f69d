"""`sftbench run`: fine-tune every case of a suite, record one JSON line per case, optionally gate."""
from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import torch
import typer
from rich.logging import RichHandler
from rich.text import Text

from .. import options as shared
from ..allocator import allocator_mode
from ..engine.device import DeviceRequest
from ..engine.executors import Executor, ExecutorChoice, pick_executor
from ..engine.preflight import RunTarget, preflight
from ..engine.ray_executor import RaySettings
from ..engine.refit import refit_cases
from ..engine.runner import RunOptions
from ..engine.schedule import parse_shard, recorded_seconds, shard
from ..errors import ConfigError, SftbenchError, SftbenchWarning
from ..exit_codes import ExitCode
from ..report.escape import terminal_text
from ..report.leaderboard import print_summary
from ..resources_spec import parse_resources
from ..results.environment import new_run_id
from ..results.record import Record
from ..results.selection import latest_per_run_key
from ..results.store import Store, read_records, result_files
from ..suite.cases import Case, expand
from ..suite.discovery import DEFAULT_SUITE, find_suite
from ..suite.loader import load_suite
from .app import (
    BaselineOpt,
    JsonOpt,
    JunitOpt,
    MarkdownOpt,
    OutOpt,
    RequireBaselineOpt,
    RequireNoiseOpt,
    StrictOpt,
    SuiteOpt,
    app,
    console,
    err_console,
    user_errors,
)
from .check import GateOptions, Rerun, gate
from .history import add_results
from .progress import RichProgress

ConfirmOpt = Annotated[int, typer.Option(min=0, help="With --check: re-run suspicious cases (REGRESSED, or an accuracy "
                                         "drop beyond half the detectable drop) with N extra seeds before the verdict.")]
PreflightOpt = Annotated[bool, typer.Option("--preflight/--no-preflight",
                                            help="Check weights, datasets, device, output folder and strategies first.")]
RayAddressOpt = Annotated[Optional[str], typer.Option(help="ray: the cluster to join (host:port or auto); default a local Ray.")]
RayWaitOpt = Annotated[Optional[float], typer.Option(min=0, help="ray: seconds a case may wait for a node the cluster lacks "
                                                     "(default: 900 where Ray reports an autoscaler that can add one, else 0).")]
RayResourcesOpt = Annotated[Optional[str], typer.Option(help="ray: custom resources every case asks for, e.g. trainer=1.")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", help="Show Ray's own log lines and its workers' output.")]
HistoryOpt = Annotated[Optional[Path], typer.Option("--history", help="Add this run to a history database "
                                                    "(`sftbench history`), e.g. results/history.db.")]


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
    confirm: ConfirmOpt = 0,
    baseline: BaselineOpt = None,
    junit_xml: JunitOpt = None,
    markdown: MarkdownOpt = None,
    json_out: JsonOpt = None,
    strict: StrictOpt = False,
    require_baseline: RequireBaselineOpt = False,
    require_noise: RequireNoiseOpt = False,
    preflight_: PreflightOpt = True,
    executor: str = typer.Option("auto", help="serial | pool | ray | auto (pool when several GPUs are visible)."),
    ray_address: RayAddressOpt = None,
    ray_wait: RayWaitOpt = None,
    ray_resources: RayResourcesOpt = None,
    verbose: VerboseOpt = False,
    workers: Optional[int] = typer.Option(None, min=1, help="pool on the CPU: worker processes (cores split)."),
    threads: Optional[int] = typer.Option(None, min=1, help="torch CPU threads: serial, or per pool worker (default: the cores split between the workers)."),
    devices: Optional[str] = typer.Option(None, help="pool on GPUs: 0,1,2 or all (one worker per GPU)."),
    shard_: Optional[str] = typer.Option(None, "--shard", help="Run only shard i/N (wall-time balanced, LPT)."),
    shard_times: Optional[list[Path]] = typer.Option(None, help="Result files whose wall times balance the shards."),
    history: HistoryOpt = None,
) -> None:
    """Fine-tune every case of a suite and record one JSON line per case."""
    path = find_suite(suite)
    spec = load_suite(path)
    cases = expand(spec, source=str(path), seeds=shared.parse_seeds(seeds), epochs=epochs)[:limit_cases]
    if shard_:
        cases = _shard(cases, shard_, shard_times or [])
    root = str(data_root) if data_root else None
    allocator_mode()  # a bad SFTBENCH_MALLOC is one sentence before anything trains, not a failed case
    choice = ExecutorChoice(executor, workers, devices, threads, _ray_settings(ray_address, ray_wait, ray_resources, verbose))
    if preflight_:
        _preflight(cases, RunTarget(spec.name, spec.requires_gpu, device, out, run_id, root, on_workers=choice.on_ray))
    options = _run_options(DeviceRequest(spec.name, spec.requires_gpu, device), choice, root, path.parent)
    store = _pick_store(out, spec.name, run_id, resume)
    where = f"on Ray workers (--device {device}, decided on each)" if choice.on_ray else f"on {options.device}"
    console.print(f"[bold]{spec.name}[/]: {len(cases)} case(s) {where} -> {store.path}")
    try:
        with _torch_threads(threads):  # float sums depend on the thread count: match it to compare with pool
            execute = pick_executor(choice, options.device, _recorded_times(store.path.parent))
            records = _execute(cases, store, options, execute, resume)
            print_summary(console, records, f"{spec.name} · run {store.run_id}")
            gate_options = GateOptions(baseline, confirm, junit_xml, markdown, json_out, strict, require_baseline,
                                       require_noise) if check_ else None
            _keep_and_judge(spec.name, path, cases, records, store.path, history, gate_options,
                            lambda extra, progress: execute(extra, store, options, progress))
    except KeyboardInterrupt:
        raise _interrupted(suite, store) from None
    if any(not r.ok for r in records):
        raise typer.Exit(ExitCode.CASE_FAILED)


def _run_options(request: DeviceRequest, choice: ExecutorChoice, root: Optional[str], suite_dir: Path) -> RunOptions:
    """Serial and pool resolve the device here; Ray leaves it to each worker (the driver's device only
    describes the records the driver writes itself, such as a case no node can hold)."""
    if choice.on_ray:
        return RunOptions(torch.device("cpu"), root, suite_dir, request)
    return RunOptions(request.resolve(), root, suite_dir)


def _ray_settings(address: Optional[str], wait_s: Optional[float], resources: Optional[str], verbose: bool) -> RaySettings:
    """Ray's log lines print through the run's console, above the progress display."""
    handler = RichHandler(console=console, show_time=False, show_path=False, markup=False)
    return RaySettings(address, wait_s, parse_resources(resources), verbose, handler)


def _interrupted(suite: str, store: Store) -> typer.Exit:
    err_console.print(f"interrupted: finished cases are kept in {store.path}; "
                      f"continue with `sftbench run --suite {suite} --resume --run-id {store.run_id}`")
    return typer.Exit(ExitCode.INTERRUPTED)


def _keep_and_judge(suite: str, path: Path, cases: list[Case], records: list[Record], results: Path,
                    history: Optional[Path], gate_options: Optional[GateOptions], rerun: Rerun) -> None:
    """Add the run to the history, then (with --check) exit with the gate's verdict."""
    if history:  # before the gate: a run that regresses is kept too
        _, added, _ = add_results(history, [results])
        console.print(f"{history}: added {added} record(s) of run {results.stem}", highlight=False)
    if gate_options is not None:
        raise typer.Exit(gate(suite, path, cases, records, gate_options, rerun))


@contextmanager
def _torch_threads(threads: Optional[int]) -> Iterator[None]:
    """Use `threads` for the run, then give the process back its own count: an in-process caller
    (the pytest plugin, a notebook) must not keep a run's setting, nor its hardware key."""
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _execute(cases: list[Case], store: Store, options: RunOptions, execute: Executor, resume: bool) -> list[Record]:
    """Run the cases with the chosen executor, then (`select: {refit: true}`) each sweep group's chosen
    point again on train + val; the latest record of each, as the store holds them."""
    with store.lock:  # one writer per run id
        with RichProgress(console, len(cases)) as progress:
            execute(cases, store, options, progress, resume)
        refits = refit_cases(cases, _latest(store, cases))
        if refits:
            console.print(f"refit: {len(refits)} chosen point(s) retrained on train + val, scored once on test",
                          highlight=False)
            with RichProgress(console, len(refits)) as progress:
                execute(refits, store, options, progress, resume)
    return _latest(store, cases + refits)


def _latest(store: Store, cases: list[Case]) -> list[Record]:
    keys = {c.run_key for c in cases}
    return [r for r in latest_per_run_key(store.records()) if r.run_key in keys]


def _shard(cases: list[Case], text: str, times: list[Path]) -> list[Case]:
    """Only committed or given timings balance shards: every shard job must compute the same split."""
    index, count = parse_shard(text)
    recorded = recorded_seconds(r for f in result_files(times) for r in read_records(f))
    mine = shard(cases, index, count, recorded)
    console.print(f"shard {index}/{count}: {len(mine)} of {len(cases)} case(s)", highlight=False)
    return mine


def _recorded_times(folder: Path) -> dict[tuple[str, str], float]:
    """Wall times of this suite's earlier runs; a file that cannot be read only costs its timings."""
    records = []
    for path in result_files([folder]) if folder.is_dir() else []:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", SftbenchWarning)  # `check` and `leaderboard` report damage
                records.extend(read_records(path))
        except SftbenchError:
            continue
    return recorded_seconds(records)


def _preflight(cases: list[Case], target: RunTarget) -> None:
    """Every problem at once, one line each, exit 2 and nothing trained."""
    report = preflight(cases, target)
    if report.problems:
        for problem in report.problems:
            err_console.print(Text.assemble(("error:", "bold red"), " ", terminal_text(problem)), highlight=False,
                              soft_wrap=True)
        err_console.print(f"preflight: {len(report.problems)} problem(s); nothing was trained "
                          "(`--no-preflight` skips these checks)", highlight=False)
        raise typer.Exit(ExitCode.CONFIG)
    console.print(f"preflight: {report.checks} checks passed in {report.seconds:.1f}s", highlight=False)


def _pick_store(out: Path, suite: str, run_id: Optional[str], resume: bool) -> Store:
    if resume and run_id is None:
        latest = Store.latest(out, suite)
        if latest is None:
            raise ConfigError(f"--resume found no earlier run of {suite!r} under {out}; run without --resume first")
        return latest
    return Store.for_run(out, suite, run_id or new_run_id())

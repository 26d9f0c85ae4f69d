"""`sftbench ab`: judge an upgrade or a code change on one noisy machine, both sides interleaved."""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Optional

import typer

from .. import options as shared
from ..engine.ab import SIDES, AbPlan, check_interpreters, run_ab
from ..exit_codes import ExitCode
from ..files import write_atomic
from ..regression.ab import compare_ab, versions
from ..regression.checks import Status
from ..report.ab import ab_json, ab_markdown, print_ab
from ..suite.discovery import DEFAULT_SUITE, find_suite
from ..suite.loader import load_suite
from .app import JsonOpt, MarkdownOpt, SuiteOpt, app, console, user_errors


@app.command()
@user_errors
def ab(
    suite: SuiteOpt = DEFAULT_SUITE,
    a: str = typer.Option(..., "--a", help="Side A: a Python interpreter, or a wrapper script that execs one."),
    b: str = typer.Option(..., "--b", help="Side B, the change to judge (same forms as --a)."),
    rounds: int = typer.Option(5, min=1, help="Rounds; each runs A and B once, alternating A B, B A, ..."),
    limit_cases: Optional[int] = typer.Option(None, min=1, help="Only the suite's first K cases."),
    seeds: Optional[str] = typer.Option(None, help=shared.SEEDS.help),
    device: str = typer.Option("cpu", help="Device for both sides (the same on both)."),
    threads: Optional[int] = typer.Option(None, min=1, help="torch CPU threads on both sides (default: the same "
                                          "default on both)."),
    tolerance: float = typer.Option(0.05, min=0.0, max=1.0, help="A slowdown smaller than this is not a regression."),
    data_root: Optional[Path] = typer.Option(None, help=shared.DATA_ROOT.help),
    out: Optional[Path] = typer.Option(None, help="Keep both sides' records here (default: a temporary folder)."),
    markdown: MarkdownOpt = None,
    json_out: JsonOpt = None,
) -> None:
    """Run the same cases under two interpreters, interleaved; exit 1 when B is slower or less accurate."""
    path = find_suite(suite)
    spec = load_suite(path)
    pythons = {"A": a, "B": b}
    with tempfile.TemporaryDirectory(prefix="sftbench-ab-") as scratch:
        folder = (out or Path(scratch)).resolve()
        imports = check_interpreters(pythons, folder)
        plan = AbPlan(path.resolve(), spec.name, pythons, rounds, folder, device, threads,
                      seeds, limit_cases, data_root.resolve() if data_root else None)
        runs = run_ab(plan, lambda side, r, n: console.print(f"round {r + 1}/{n}: side {side}", highlight=False))
    a_runs, b_runs = runs.records["A"], runs.records["B"]
    cases = compare_ab(a_runs, b_runs, tolerance)
    sides = {s: {"python": pythons[s], "imports": imports[s], "versions": versions(runs.records[s][0])} for s in SIDES}
    title = f"{spec.name}: B vs A over {rounds} interleaved round(s)"
    print_ab(console, cases, sides, title)
    if markdown:
        write_atomic(markdown, ab_markdown(cases, sides, title))
    if json_out:
        write_atomic(json_out, ab_json(cases, sides, rounds))
    if any(c.status is Status.FAILED for c in cases):
        raise typer.Exit(ExitCode.CASE_FAILED)
    raise typer.Exit(ExitCode.REGRESSION if any(c.status is Status.REGRESSED for c in cases) else ExitCode.OK)

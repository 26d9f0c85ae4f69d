"""`sftbench check` and `sftbench baseline update`, and the gate step that `run --check` shares."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import typer
from rich.text import Text

from .. import options as shared
from ..engine.observer import Observer
from ..errors import SftbenchError, listing
from ..exit_codes import ExitCode
from ..regression.compare import Status
from ..regression.gate import (
    bless,
    confirm_suspicious,
    default_baselines_dir,
    ensure_covers,
    ensure_noise,
    exit_code,
    hardware_of,
    judge,
    load_records,
    pick_baseline,
    suspicious,
)
from ..regression.planning import plans
from ..regression.summary import summarise
from ..report.escape import terminal_text
from ..report.planning import print_seed_plan
from ..report.verdicts import print_verdicts, write_reports
from ..results.record import Record
from ..results.selection import on_node
from ..results.sweep_choice import selected
from ..suite.cases import Case, expand
from ..suite.discovery import DEFAULT_SUITE, find_suite
from ..suite.loader import load_suite
from .app import (
    AllPointsOpt,
    BaselineOpt,
    JsonOpt,
    JunitOpt,
    MarkdownOpt,
    NodeOpt,
    OutOpt,
    RequireBaselineOpt,
    RequireNoiseOpt,
    ResultsOpt,
    StrictOpt,
    SuiteOpt,
    app,
    baseline_app,
    console,
    err_console,
    user_errors,
)
from .progress import RichProgress


@dataclass(frozen=True)
class GateOptions:
    """What `check` and `run --check` share: which baseline, how to confirm, where to report."""

    baseline: Optional[Path] = None
    confirm: int = 0
    junit: Optional[Path] = None
    markdown: Optional[Path] = None
    json: Optional[Path] = None
    strict: bool = False
    require_baseline: bool = False
    require_noise: bool = False
    all_points: bool = False  # judge every sweep point as its own case, not each group's chosen point


Rerun = Callable[[list[Case], Observer], list[Record]]  # runs extra cases with the run's own executor


def gate(suite: str, suite_path: Path, cases: list[Case], records: list[Record], options: GateOptions,
         rerun: Optional[Rerun] = None) -> ExitCode:
    """Verdicts for the records (confirming regressions by re-running when asked), reports, exit code.
    A sweep with `select:` is judged by each group's point chosen on validation, under the group's id."""
    records = selected(records, options.all_points)
    if not records:
        raise SftbenchError(f"no record of suite {suite!r} is left to judge (--node keeps none?); nothing to judge is "
                            "never a pass: check the node or the result files")
    base = pick_baseline(options.baseline, default_baselines_dir(suite_path), suite, hardware_of(records))
    if options.baseline is not None and base is not None:
        ensure_covers(base, (r.case_id for r in records), suite)
    if options.require_noise and base is not None:
        ensure_noise(base, (r.case_id for r in records))
    verdicts = judge(cases, records, base)
    chosen = {v.case_id for v in verdicts if suspicious(v)}
    if options.confirm and chosen and rerun is not None:
        regressed = sum(v.status is Status.REGRESSED for v in verdicts if v.case_id in chosen)
        console.print(f"confirming {len(chosen)} case(s) ({regressed} regressed, {len(chosen) - regressed} with a drop "
                      f"beyond half their detectable drop) with {options.confirm} extra seed(s) each")
        with RichProgress(console, len(chosen) * options.confirm) as progress:
            verdicts = confirm_suspicious(verdicts, chosen, cases, records, options.confirm, base,
                                          lambda extra: rerun(extra, progress))
    against = f"{base.path} (hardware {base.hardware_key})" if base else "no baseline"
    print_verdicts(console, verdicts, f"{suite} vs {against}")
    write_reports(verdicts, suite, options.junit, options.markdown, options.json, against)
    new = [v.case_id for v in verdicts if v.status is Status.NEW]
    if options.require_baseline and new:
        err_console.print(f"[bold red]error:[/] {len(new)} case(s) have no baseline ({listing(new)}); bless one with `sftbench baseline update --suite {suite}`"
                          " and commit it", highlight=False, soft_wrap=True)
    return exit_code(verdicts, options.strict, options.require_baseline)


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
    require_baseline: RequireBaselineOpt = False,
    require_noise: RequireNoiseOpt = False,
    all_points: AllPointsOpt = False,
    node: NodeOpt = None,
) -> None:
    """Compare results with the baseline: one verdict per case; exit 1 on regression, 3 on a failed case."""
    path = find_suite(suite)
    spec = load_suite(path)
    records = load_records(results or [], out, spec.name)
    records = on_node(records, node) if node else records
    cases = expand(spec, source=str(path))
    code = gate(spec.name, path, cases, records, GateOptions(baseline, 0, junit_xml, markdown, json_out, strict,
                                                                  require_baseline, require_noise, all_points))
    raise typer.Exit(code)


@baseline_app.command("update")
@user_errors
def baseline_update(
    suite: SuiteOpt = DEFAULT_SUITE,
    results: ResultsOpt = None,
    out: OutOpt = Path(shared.OUT.default),
    baselines_dir: Optional[Path] = typer.Option(None, help="Baselines root (default: baselines/ beside the suite's folder)."),
    target_drop: str = typer.Option("3pp", help="The accuracy drop the seed plan aims to catch, in percentage points."),
    require_noise: RequireNoiseOpt = False,
    all_points: AllPointsOpt = False,
) -> None:
    """Write or refresh baselines/<suite>/<hardware>.json from results (all seeds of a case pooled),
    then print each case's seed plan: learnt seed sd, detectable drops, seeds needed for --target-drop."""
    path = find_suite(suite)
    spec = load_suite(path)
    target = parse_points(target_drop)
    records = selected(load_records(results or [], out, spec.name), all_points)
    hardware_of(records)  # one hardware per blessing, as the baseline file is per hardware
    seeds = {case_id: len(s.accuracy) for case_id, s in summarise(records).items()}  # finished seeds per case
    blind = [c for c, n in seeds.items() if n < 2]
    if blind and require_noise:
        raise SftbenchError(f"{len(blind)} case(s) have one seed ({listing(blind)}), so their seed noise cannot be "
                            "learnt; run more seeds (e.g. --seeds 0,1,2,3,4) and bless again")
    if blind:
        err_console.print(f"[yellow]warning:[/] {len(blind)} case(s) blessed from one seed ({listing(blind)}): no seed "
                          "noise learnt; their checks fall back to test-set noise alone (McNemar, else two "
                          "proportions), which misses seed noise; CI can refuse such a baseline with --require-noise",
                          highlight=False, soft_wrap=True)
    few = [c for c, n in seeds.items() if 2 <= n < spec.baseline_seeds]
    if few:
        err_console.print(f"[yellow]warning:[/] {len(few)} case(s) blessed with fewer than the suite's baseline_seeds="
                          f"{spec.baseline_seeds} seeds ({listing(few)})", highlight=False, soft_wrap=True)
    thresholds = {c.case_id: c.thresholds.accuracy for c in expand(spec, source=str(path))}
    refused: list[str] = []
    for blessing in bless(records, spec.name, baselines_dir or default_baselines_dir(path)):
        refused += blessing.refused
        if not blessing.blessed:
            console.print(f"wrote nothing to {blessing.path}: no case finished to bless", highlight=False)
            continue
        console.print(f"wrote {blessing.cases} case(s) to {blessing.path}")
        print_seed_plan(console, plans(blessing.baseline.cases, thresholds, target), target, spec.name)
    for item in refused:
        err_console.print(Text.assemble(("refused failed case", "red"), " ", terminal_text(item)), soft_wrap=True)
    if refused:
        raise typer.Exit(ExitCode.CASE_FAILED)


def parse_points(text: str) -> float:
    """'3pp' or '3' -> 0.03 (accuracy is a fraction inside sftbench)."""
    try:
        value = float(text.strip().removesuffix("pp").strip())
    except ValueError:
        raise SftbenchError(f"--target-drop {text!r} is not a number of percentage points; write e.g. 3pp") from None
    if not 0 < value < 100:
        raise SftbenchError(f"--target-drop {text!r} must lie between 0 and 100 percentage points; write e.g. 3pp")
    return value / 100

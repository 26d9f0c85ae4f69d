"""The regression gate, written once for the CLI, the pytest plugin and the Python API:
records + a baseline -> verdicts (optionally confirming regressions by re-running), the exit
code they imply, and blessing records into a baseline."""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..errors import SftbenchError, listing
from ..exit_codes import ExitCode
from ..results.record import Record
from ..results.store import Store, read_records, result_files
from ..suite.cases import Case
from .baselines import (
    Baseline,
    baseline_path,
    find_baseline,
    load_baseline,
    update_baseline,
    write_baseline,
)
from .compare import Status, Verdict, check
from .integrity import check_record
from .summary import summarise

Rerun = Callable[[list[Case]], list[Record]]  # runs extra seeds and returns every record they produced


def default_baselines_dir(suite_path: Path) -> Path:
    """`baselines/` next to the suite's folder (repo checkout, ./benchmarks, or installed share/)."""
    return suite_path.resolve().parent.parent / "baselines"


def load_records(files: Iterable[Path], out_dir: Path, suite: str) -> list[Record]:
    """Records from the given files/folders, or from the latest run of the suite under out_dir."""
    paths = result_files(files)
    if not paths:
        latest = Store.latest(out_dir, suite)
        if latest is None:
            raise SftbenchError(f"no results for suite {suite!r} under {out_dir}; run `sftbench run --suite {suite}` "
                                "first or pass result files")
        paths = [latest.path]
    records = []
    for path in paths:
        for record in read_records(path):
            if record.suite != suite:  # a nightly pointed at another suite's file must not pass by judging nothing
                raise SftbenchError(f"{path} holds records of suite {record.suite!r}, not {suite!r}; pass "
                                    f"--suite {record.suite}, or the results of {suite!r}")
            check_record(record, path)
            records.append(record)
    if not records:
        raise SftbenchError(f"no record of suite {suite!r} in {listing(str(p) for p in paths)}; nothing to judge is "
                            f"never a pass: run `sftbench run --suite {suite}` or pass its result files")
    return records


def hardware_of(records: list[Record]) -> str:
    """The hardware the run's finished cases ran on. A failed record is left out: it may have been written
    by a Ray driver or a node that could not run the case, not by the hardware that ran the others."""
    keys = {r.hardware_key for r in records if r.ok} or {r.hardware_key for r in records}
    if len(keys) > 1:
        raise SftbenchError(f"the results mix hardware keys {sorted(keys)}; check one hardware's results at a time")
    return keys.pop() if keys else "cpu"


def pick_baseline(explicit: Optional[Path], baselines_dir: Path, suite: str, hardware_key: str) -> Optional[Baseline]:
    """The given file; else the suite's baseline for this exact hardware key; else one from the same
    device type (any CPU for a CPU key; a CUDA key names the GPU model, so only itself); else any
    baseline of the suite. Accuracy is judged against whichever is found; speed only on the same key."""
    if explicit is not None:
        chosen = load_baseline(explicit)
        if chosen.suite != suite:
            raise SftbenchError(f"baseline {explicit} is for suite {chosen.suite!r}, not {suite!r}; pass the "
                                f"baseline of {suite!r} (baselines/{suite}/...) or check the {chosen.suite!r} suite")
        return chosen
    exact = find_baseline(baselines_dir, suite, hardware_key)
    if exact is not None:
        return exact
    files = sorted((baselines_dir / suite).glob("*.json"))
    same_type = [f for f in files if _device_type(f.stem) == _device_type(hardware_key)]
    return load_baseline((same_type or files)[0]) if files else None


def ensure_covers(baseline: Baseline, case_ids: Iterable[str], suite: str) -> None:
    """An explicit baseline that shares no case with the run would only produce NEW and MISSING."""
    ours = set(case_ids)
    if baseline.cases and ours and not ours & set(baseline.cases):
        raise SftbenchError(f"baseline {baseline.path} (suite {suite!r}) holds none of this run's {len(ours)} case(s), "
                            f"e.g. it has {sorted(baseline.cases)[0]!r} and the run {sorted(ours)[0]!r}; pass the "
                            "baseline blessed from this suite's current cases, or bless one")


def _device_type(hardware_key: str) -> str:
    return "cpu" if hardware_key.startswith("cpu-") else hardware_key  # mps, or the GPU model slug


def judge(cases: list[Case], records: list[Record], baseline: Optional[Baseline],
          only: Optional[set[str]] = None) -> list[Verdict]:
    """One verdict per case; `only` limits the judgement to those case ids (the rest are not MISSING),
    with the detectable drop still stated for the baseline's whole family of cases."""
    family = len(baseline.cases) if baseline is not None and only is not None else None
    if baseline is not None and only is not None:
        baseline = baseline.model_copy(update={"cases": {k: v for k, v in baseline.cases.items() if k in only}})
    thresholds = {**{c.sweep_group: c.thresholds for c in cases if c.select}, **{c.case_id: c.thresholds for c in cases}}
    return check(summarise(records), baseline, thresholds, family=family)


def suspicious(verdict: Verdict) -> bool:
    """REGRESSED, or an accuracy drop beyond half the detectable drop that one seed could not settle:
    the cases worth more seeds before the verdict (sequential testing buys power only there)."""
    if verdict.status is Status.REGRESSED:
        return True
    acc = verdict.check_for("accuracy")
    if verdict.status is not Status.NOISE or acc is None or acc.delta is None or acc.detectable_drop is None:
        return False
    return -acc.delta > acc.detectable_drop / 2


def confirm_suspicious(verdicts: list[Verdict], chosen: set[str], cases: list[Case], records: list[Record],
                       extra_seeds: int, baseline: Optional[Baseline], rerun: Rerun) -> list[Verdict]:
    """Re-run each chosen (`suspicious`) case with `extra_seeds` new seeds, then judge all its seeds
    again; the confirmed verdict keeps the first stage as `initial`."""
    if not chosen or extra_seeds <= 0:
        return verdicts
    extra: list[Case] = []
    for case_id in sorted(chosen):
        family = [c for c in cases if c.case_id == case_id]
        start = max(c.seed for c in family) + 1
        extra += [dataclasses.replace(family[0], seed=s) for s in range(start, start + extra_seeds)]
    confirmed = {v.case_id: v for v in judge(cases + extra, records + rerun(extra), baseline)}
    return [dataclasses.replace(confirmed[v.case_id], initial=v) if v.case_id in chosen else v for v in verdicts]


def ensure_noise(baseline: Baseline, case_ids: Iterable[str]) -> None:
    """--require-noise: a baseline case blessed from one seed has learnt no seed noise."""
    blind = {c for c in case_ids if c in baseline.cases and baseline.cases[c].accuracy.n < 2}
    if blind:
        raise SftbenchError(f"baseline {baseline.path} holds one seed for {len(blind)} case(s) ({listing(blind)}), "
                            "so it has learnt no seed noise; bless it from two or "
                            "more seeds (see `sftbench baseline update`'s seed plan), or drop --require-noise")


def exit_code(verdicts: list[Verdict], strict: bool = False, require_baseline: bool = False) -> ExitCode:
    """OK: pass/improved/noise/new; CASE_FAILED: a case failed; REGRESSION: a regression (or, with
    strict, a MISSING or INCOMPARABLE case; with require_baseline, a NEW case)."""
    statuses = {v.status for v in verdicts}
    if Status.FAILED in statuses:
        return ExitCode.CASE_FAILED
    if Status.REGRESSED in statuses or (strict and statuses & {Status.MISSING, Status.INCOMPARABLE}):
        return ExitCode.REGRESSION
    if require_baseline and Status.NEW in statuses:
        return ExitCode.REGRESSION
    return ExitCode.OK


@dataclass(frozen=True)
class Blessing:
    path: Path
    baseline: Baseline  # the file's content after blessing
    refused: list[str]  # failed cases, with their errors
    blessed: int = 0  # cases written; 0: the file was not written

    @property
    def cases(self) -> int:
        return len(self.baseline.cases)


def bless(records: list[Record], suite: str, baselines_dir: Path) -> list[Blessing]:
    """Write the records' cases into their hardware's baseline file (other entries are kept)."""
    by_hardware: dict[str, list[Record]] = {}
    for record in records:
        by_hardware.setdefault(record.hardware_key, []).append(record)
    done = []
    for hardware, group in sorted(by_hardware.items()):
        target = baseline_path(baselines_dir, suite, hardware)
        existing = find_baseline(baselines_dir, suite, hardware)
        summaries = summarise(group)
        updated, refused = update_baseline(existing, summaries, suite, hardware)
        blessed = len(summaries) - len(refused)
        if blessed:  # nothing blessed, nothing written: a run of failed cases leaves the file as it was
            write_baseline(updated, target)
        done.append(Blessing(target, updated, refused, blessed))
    return done

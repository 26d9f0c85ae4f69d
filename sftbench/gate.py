"""The regression gate: results + baseline -> verdicts, with optional confirmation re-runs."""
from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Optional

from .baselines import Baseline, find_baseline, load_baseline
from .compare import Status, Verdict, check
from .errors import SftbenchError
from .results import Store, read_records, result_files
from .runner import Observer, RunOptions, SilentObserver, run_cases
from .spec import Case
from .summary import summarise


def default_baselines_dir(suite_path: Path) -> Path:
    """`baselines/` next to the suite's folder (repo checkout, ./benchmarks, or installed share/)."""
    return suite_path.resolve().parent.parent / "baselines"


def load_records(files: Iterable[Path], out_dir: Path, suite: str) -> list[dict[str, Any]]:
    """Records from the given files/folders, or from the latest run of the suite under out_dir."""
    paths = result_files(files)
    if not paths:
        latest = Store.latest(out_dir, suite)
        if latest is None:
            raise SftbenchError(f"no results for suite {suite!r} under {out_dir}; run `sftbench run --suite {suite}` "
                                "first or pass result files")
        paths = [latest.path]
    return [r for p in paths for r in read_records(p) if r.get("suite") == suite]


def pick_baseline(explicit: Optional[Path], baselines_dir: Path, suite: str, hardware_key: str) -> Optional[Baseline]:
    if explicit is not None:
        return load_baseline(explicit)
    return find_baseline(baselines_dir, suite, hardware_key)


def verdicts_for(cases: list[Case], records: list[dict[str, Any]], baseline: Optional[Baseline]) -> list[Verdict]:
    thresholds = {c.case_id: c.thresholds for c in cases}
    return check(summarise(records), baseline, thresholds)


def hardware_of(records: list[dict[str, Any]]) -> str:
    keys = {r["env"]["hardware_key"] for r in records}
    if len(keys) > 1:
        raise SftbenchError(f"the results mix hardware keys {sorted(keys)}; check one hardware's results at a time")
    return keys.pop() if keys else "cpu"


def confirm_regressions(
    verdicts: list[Verdict], cases: list[Case], store: Store, options: RunOptions, extra_seeds: int,
    baseline: Optional[Baseline], observer: Observer = SilentObserver(),
) -> list[Verdict]:
    """Re-run each REGRESSED case with `extra_seeds` new seeds, then judge all its seeds again."""
    regressed = {v.case_id for v in verdicts if v.status is Status.REGRESSED}
    if not regressed or extra_seeds <= 0:
        return verdicts
    reruns = []
    for case_id in sorted(regressed):
        family = [c for c in cases if c.case_id == case_id]
        start = max(c.seed for c in family) + 1
        reruns += [dataclasses.replace(family[0], seed=s) for s in range(start, start + extra_seeds)]
    run_cases(reruns, store, options, observer)
    confirmed = {v.case_id: v for v in verdicts_for(cases + reruns, store.records(), baseline)}
    final = []
    for v in verdicts:
        if v.case_id in regressed:
            final.append(dataclasses.replace(confirmed[v.case_id], initial=v))
        else:
            final.append(v)
    return final

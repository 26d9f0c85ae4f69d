"""The committed baseline as a band on a history series, so a case page shows where the gate stands.

Accuracy: the baseline's seed mean ± one seed sd (the spread one seed of an unchanged run has), from
the baseline of the hardware key the series last ran on, as `sftbench check` would pick. Speed and
memory: the geometric mean of the baseline's blessed runs ± one between-run sd in log space, only
from a baseline blessed on the series' own machine fingerprint (another machine's speed is no band).
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..history.series import Series
from ..paths import SAFE_NAME
from ..regression.baselines import Baseline, BaselineEntry, load_baseline

RUN_FIELDS = {"train_throughput": "train_samples_per_s", "eval_throughput": "eval_samples_per_s", "peak_mb": "peak_mb"}


@dataclass(frozen=True)
class Band:
    low: float
    mid: float
    high: float
    label: str


def load_suite_baselines(root: Path, suites: set[str]) -> list[Baseline]:
    """Every committed baseline of these suites under root (baselines/<suite>/<hardware key>.json)."""
    safe = sorted(s for s in suites if SAFE_NAME.fullmatch(s))  # a suite name from a history file never climbs out
    return [load_baseline(path) for suite in safe for path in sorted((root / suite).glob("*.json"))]


def band_for(series: Series, baselines: list[Baseline]) -> Optional[Band]:
    """The series' baseline band, or None where no baseline of its case and machine exists."""
    mine = [b for b in baselines if b.suite == series.suite and series.case_id in b.cases]
    if series.metric == "top1":
        key = series.points[-1].env.get("hardware_key")
        entry = next((b.cases[series.case_id] for b in mine if b.hardware_key == key), None)
        return _accuracy_band(entry) if entry else None
    for baseline in mine:
        entry = baseline.cases[series.case_id]
        if series.fingerprint in (entry.env.get("fingerprint_digest"), baseline.hardware_key):
            return _speed_band(entry, RUN_FIELDS[series.metric])
    return None


def _accuracy_band(entry: BaselineEntry) -> Band:
    values = entry.accuracy_values
    mean = statistics.fmean(values)
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return Band(mean - sd, mean, mean + sd, f"baseline {entry.date[:10]}: {len(values)} seeds, mean ± seed sd")


def _speed_band(entry: BaselineEntry, field: str) -> Optional[Band]:
    logs = [math.log(v) for v in (getattr(run, field) for run in entry.runs) if v]
    if not logs:
        return None
    centre = statistics.fmean(logs)
    sd = statistics.stdev(logs) if len(logs) > 1 else 0.0
    return Band(math.exp(centre - sd), math.exp(centre), math.exp(centre + sd),
                f"baseline {entry.date[:10]}: {len(logs)} runs, geometric mean ± between-run sd")

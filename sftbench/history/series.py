"""A case's metric over runs: one point per run (mean, seed sd, n), oldest first.

Accuracy is one series per case on any hardware (it is judged on any machine). Throughput and
memory are one series per case *and hardware fingerprint*: a night on another runner is another
machine, not a change of the code, so speed is only ever read within one fingerprint.
"""
from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Optional

from .db import METRICS

SPEED_METRICS = ("train_throughput", "eval_throughput", "peak_mb")
ENV_FIELDS = ("torch", "timm", "cuda", "driver", "hardware_key", "fingerprint", "spec_hash")
HIGHER_IS_BETTER = {"top1": True, "train_throughput": True, "eval_throughput": True, "peak_mb": False}


@dataclass
class RunPoint:
    run_id: str
    commit: Optional[str]
    date: str
    values: list[float]
    env: dict[str, Optional[str]]
    env_change: dict[str, list[Optional[str]]] = field(default_factory=dict)  # field: [before, after]

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values)

    @property
    def sd(self) -> Optional[float]:
        return statistics.stdev(self.values) if len(self.values) > 1 else None

    @property
    def n(self) -> int:
        return len(self.values)

    def to_json(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "commit": self.commit, "date": self.date, "mean": self.mean, "sd": self.sd,
                "n": self.n, "env_change": self.env_change}


@dataclass
class Series:
    suite: str
    case_id: str
    metric: str
    fingerprint: Optional[str]  # None for accuracy: one series across machines
    points: list[RunPoint]

    @property
    def key(self) -> str:
        return f"{self.suite}/{self.case_id}/{self.metric}" + (f"@{self.fingerprint}" if self.fingerprint else "")

    def to_json(self) -> dict[str, Any]:
        return {"suite": self.suite, "case_id": self.case_id, "metric": self.metric, "fingerprint": self.fingerprint,
                "points": [p.to_json() for p in self.points]}


def build_series(rows: Sequence[Any], metrics: Sequence[str] = METRICS) -> list[Series]:
    """Series from the database's query rows (oldest run first, as `History.rows` returns them)."""
    groups: dict[tuple[str, str, str, Optional[str]], dict[str, RunPoint]] = {}
    for row in rows:
        for metric in metrics:
            value = row[metric]
            if value is None or (isinstance(value, float) and math.isnan(value)):
                continue
            fingerprint = (row["fingerprint"] or row["hardware_key"]) if metric in SPEED_METRICS else None
            runs = groups.setdefault((row["suite"], row["case_id"], metric, fingerprint), {})
            point = runs.get(row["run_id"])
            if point is None:
                env = {name: row[name] for name in ENV_FIELDS}
                point = runs[row["run_id"]] = RunPoint(row["run_id"], row["commit_sha"], row["started_at"], [], env)
            point.values.append(float(value))
    series = [Series(suite, case, metric, fp, list(runs.values())) for (suite, case, metric, fp), runs in groups.items()]
    for one in series:
        mark_environment_changes(one.points)
    return sorted(series, key=lambda s: (s.suite, s.case_id, METRICS.index(s.metric), s.fingerprint or ""))


def mark_environment_changes(points: list[RunPoint]) -> None:
    """Name, on each run, what differs from the run before it: a library, the machine, the spec."""
    for before, after in zip(points, points[1:]):
        after.env_change = {name: [before.env[name], after.env[name]] for name in ENV_FIELDS
                            if before.env[name] != after.env[name]}

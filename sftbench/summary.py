"""Pool result records into one summary per case (all seeds), the unit baselines and verdicts use."""
from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Optional

from .errors import SftbenchError


def latest_per_run_key(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The last record of each run key (a resumed or repeated case keeps its newest result)."""
    latest: dict[str, dict[str, Any]] = {}
    for record in records:
        latest.pop(record["run_key"], None)
        latest[record["run_key"]] = record
    return list(latest.values())


def mean_std(values: list[float]) -> tuple[Optional[float], Optional[float]]:
    if not values:
        return None, None
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else None)


def median(values: list[float]) -> Optional[float]:
    return statistics.median(values) if values else None


@dataclass
class CaseSummary:
    case_id: str
    spec_hash: str
    hardware_key: str
    accuracy: dict[int, float] = field(default_factory=dict)  # seed -> top-1
    train_throughput: list[float] = field(default_factory=list)
    eval_throughput: list[float] = field(default_factory=list)
    peak_mb: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # one per failed seed
    env: dict[str, Any] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    extra: dict[str, list[Any]] = field(default_factory=dict)  # leaderboard columns

    @property
    def failed(self) -> bool:
        return bool(self.errors)

    @property
    def accuracy_values(self) -> list[float]:
        return [self.accuracy[s] for s in sorted(self.accuracy)]


def summarise(records: Iterable[dict[str, Any]]) -> dict[str, CaseSummary]:
    """case_id -> summary over the latest record of every seed."""
    summaries: dict[str, CaseSummary] = {}
    for r in latest_per_run_key(records):
        s = summaries.get(r["case_id"])
        if s is None:
            s = summaries[r["case_id"]] = CaseSummary(
                r["case_id"], r["spec_hash"], r["env"]["hardware_key"], env=r["env"], labels=r.get("labels", {}))
        if r["spec_hash"] != s.spec_hash:
            raise SftbenchError(
                f"results for case {r['case_id']!r} mix two suite definitions (spec hashes {s.spec_hash} and "
                f"{r['spec_hash']}); pass the results of one run or re-run the old seeds"
            )
        if r["status"] != "ok":
            s.errors.append(f"seed {r['seed']}: {r.get('error', {}).get('message', 'unknown error')}")
            continue
        s.accuracy[r["seed"]] = r["metrics"]["top1"]
        # a probe on cached features times only its head (about a millisecond): not a speed to gate on
        head_only = r["throughput"].get("train_path") == "cached_features"
        for target, value in ((s.train_throughput, None if head_only else r["throughput"]["train_samples_per_s"]),
                              (s.eval_throughput, r["throughput"]["eval_samples_per_s"]),
                              (s.peak_mb, r.get("memory", {}).get("peak_mb"))):
            if value is not None:
                target.append(value)
    return summaries

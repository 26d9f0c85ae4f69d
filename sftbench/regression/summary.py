"""Pool result records into one summary per case (all seeds), the unit baselines and verdicts use."""
from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Optional

from ..errors import SftbenchError
from ..results.record import Environment, Labels, PerExample, Record
from ..results.selection import latest_per_run_key


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
    per_example: dict[int, PerExample] = field(default_factory=dict)  # seed -> correctness bits
    train_windows: list[float] = field(default_factory=list)  # samples/s per timing window, all seeds
    eval_windows: list[float] = field(default_factory=list)
    test_n: Optional[int] = None  # examples in the test split
    env: Optional[Environment] = None
    labels: Optional[Labels] = None

    @property
    def failed(self) -> bool:
        return bool(self.errors)

    @property
    def accuracy_values(self) -> list[float]:
        return [self.accuracy[s] for s in sorted(self.accuracy)]


def summarise(records: Iterable[Record]) -> dict[str, CaseSummary]:
    """case_id -> summary over the latest record of every seed."""
    summaries: dict[str, CaseSummary] = {}
    for r in latest_per_run_key(records):
        s = summaries.get(r.case_id)
        if s is None:
            s = summaries[r.case_id] = CaseSummary(r.case_id, r.spec_hash, r.hardware_key, env=r.env, labels=r.labels)
        if r.spec_hash != s.spec_hash:
            raise SftbenchError(
                f"results for case {r.case_id!r} mix two suite definitions (spec hashes {s.spec_hash} and "
                f"{r.spec_hash}); pass the results of one run or re-run the old seeds"
            )
        if not r.ok or r.metrics is None or r.throughput is None:
            s.errors.append(f"seed {r.seed}: {r.error_message}")
            continue
        s.accuracy[r.seed] = r.metrics.top1
        if r.per_example is not None:
            s.per_example[r.seed] = r.per_example
        s.test_n = r.dataset.sizes.get("test") if r.dataset else s.test_n
        s.eval_windows += r.throughput.eval_windows
        # a probe on cached features times only its head (about a millisecond): not a speed to gate on
        head_only = r.throughput.train_path == "cached_features"
        for target, value in ((s.train_throughput, None if head_only else r.throughput.train_samples_per_s),
                              (s.eval_throughput, r.throughput.eval_samples_per_s),
                              (s.peak_mb, r.memory.peak_mb if r.memory else None)):
            if value is not None:
                target.append(value)
        if not head_only:
            s.train_windows += r.throughput.train_windows
    return summaries

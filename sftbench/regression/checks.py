"""What a verdict is made of: explicit statuses, one check per metric, one verdict per case."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any, Optional


class Status(str, Enum):
    PASS = "PASS"
    IMPROVED = "IMPROVED"
    REGRESSED = "REGRESSED"
    NOISE = "NOISE"  # worse, but within tolerance / noise
    NEW = "NEW"  # no baseline for the case
    MISSING = "MISSING"  # in the baseline, not in this run
    FAILED = "FAILED"  # the case errored
    INCOMPARABLE = "INCOMPARABLE"  # the spec hash differs: the case definition changed
    SKIPPED = "SKIPPED"  # a metric not compared (metric level only)
    # speed not judged: another machine, or this one measurably slower or faster than when blessed
    # (metric level only; the case's status then comes from accuracy)
    MACHINE_DIFFERS = "MACHINE-DIFFERS"


@dataclass
class MetricCheck:
    metric: str
    baseline: Optional[float]
    current: Optional[float]
    status: Status
    reason: str
    tolerance: Optional[float] = None  # absolute (accuracy) or relative (throughput, memory)
    p_value: Optional[float] = None  # raw one-sided p
    p_adjusted: Optional[float] = None  # Holm across the run's cases (accuracy)
    test: Optional[str] = None  # seed-t | mcnemar | two-proportion (accuracy)
    losses: Optional[int] = None  # McNemar discordant counts
    gains: Optional[int] = None
    detectable_drop: Optional[float] = None  # accuracy: the true drop caught with the stated power

    @property
    def delta(self) -> Optional[float]:
        if self.baseline is None or self.current is None:
            return None
        return self.current - self.baseline


@dataclass
class Verdict:
    case_id: str
    status: Status
    reason: str
    checks: list[MetricCheck] = field(default_factory=list)
    baseline_n: int = 0
    current_n: int = 0
    initial: Optional["Verdict"] = None  # the verdict before --confirm re-runs, when there were any

    def check_for(self, metric: str) -> Optional[MetricCheck]:
        return next((c for c in self.checks if c.metric == metric), None)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"] = self.status.value
        for check in data["checks"]:
            check["status"] = check["status"].value
        if self.initial is not None:
            data["initial"] = self.initial.to_dict()
        return data

"""Pure comparison of case summaries with a baseline -> one explicit verdict per case.

Accuracy (higher is better): a drop regresses when it exceeds max(abs_tol, k * sigma), sigma
being the seed noise of the difference of means; with >= 2 seeds on both sides a one-sided Welch
test must also reject at alpha. Throughput (higher is better) and peak memory (lower is better)
use relative tolerances and are compared only on the same hardware key.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any, Optional

from scipy import stats

from ..schema import Thresholds
from .baselines import Baseline, BaselineEntry
from .summary import CaseSummary, mean_std, median

RELATIVE_RESOLUTION = 1e-3


class Status(str, Enum):
    PASS = "PASS"
    IMPROVED = "IMPROVED"
    REGRESSED = "REGRESSED"
    NOISE = "NOISE"  # worse, but within tolerance / noise
    NEW = "NEW"  # no baseline for the case
    MISSING = "MISSING"  # in the baseline, not in this run
    FAILED = "FAILED"  # the case errored
    INCOMPARABLE = "INCOMPARABLE"  # spec hash or hardware key differ
    SKIPPED = "SKIPPED"  # a metric that one side lacks (metric level only)


@dataclass
class MetricCheck:
    metric: str
    baseline: Optional[float]
    current: Optional[float]
    status: Status
    reason: str
    tolerance: Optional[float] = None  # absolute (accuracy) or relative (throughput, memory)
    p_value: Optional[float] = None

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


# --- accuracy -----------------------------------------------------------------------------------


def welch_p_value(baseline: list[float], current: list[float]) -> Optional[float]:
    """One-sided p-value for 'current is lower than baseline'; None with fewer than 2 seeds a side."""
    if len(baseline) < 2 or len(current) < 2:
        return None
    if max(baseline) == min(baseline) and max(current) == min(current):  # no spread: the t statistic is undefined
        return 0.0 if statistics.fmean(current) < statistics.fmean(baseline) else 1.0
    return float(stats.ttest_ind(baseline, current, equal_var=False, alternative="greater").pvalue)


def accuracy_check(baseline: list[float], current: list[float], t: Thresholds) -> MetricCheck:
    if not baseline or not current:
        return MetricCheck("accuracy", None, None, Status.SKIPPED, "no accuracy on one side")
    b_mean, b_std = mean_std(baseline)
    c_mean, c_std = mean_std(current)
    assert b_mean is not None and c_mean is not None
    a = t.accuracy
    stds = [s for s in (b_std, c_std) if s is not None]
    seed_std = math.sqrt(sum(s * s for s in stds) / len(stds)) if stds else a.assumed_seed_std
    sigma = seed_std * math.sqrt(1 / len(baseline) + 1 / len(current))
    tolerance = max(a.abs_tol, a.k_sigma * sigma)
    delta = c_mean - b_mean
    p = welch_p_value(baseline, current)
    pp = lambda x: f"{100 * x:+.2f} pp"  # noqa: E731
    limits = f"tolerance {100 * tolerance:.2f} pp = max(abs_tol {100 * a.abs_tol:.2f}, {a.k_sigma:g}σ {100 * a.k_sigma * sigma:.2f})"
    if delta > tolerance:
        return MetricCheck("accuracy", b_mean, c_mean, Status.IMPROVED, f"accuracy {pp(delta)} beyond {limits}", tolerance, p)
    if -delta > tolerance:
        if p is not None and p >= a.alpha:
            return MetricCheck("accuracy", b_mean, c_mean, Status.NOISE,
                               f"accuracy {pp(delta)} beyond {limits}, but Welch p={p:.3f} ≥ α={a.alpha:g}", tolerance, p)
        test = f", Welch p={p:.3g} < α={a.alpha:g}" if p is not None else ""
        return MetricCheck("accuracy", b_mean, c_mean, Status.REGRESSED, f"accuracy {pp(delta)} beyond {limits}{test}", tolerance, p)
    if delta < -1e-9:
        return MetricCheck("accuracy", b_mean, c_mean, Status.NOISE, f"accuracy {pp(delta)} within {limits}", tolerance, p)
    return MetricCheck("accuracy", b_mean, c_mean, Status.PASS, f"accuracy {pp(delta)}", tolerance, p)


# --- throughput and memory ----------------------------------------------------------------------


def relative_check(metric: str, baseline: Optional[float], current: Optional[float], rel_tol: float,
                   higher_is_better: bool) -> MetricCheck:
    if baseline is None or current is None or baseline <= 0:
        return MetricCheck(metric, baseline, current, Status.SKIPPED, f"{metric}: missing on one side")
    change = current / baseline - 1.0
    better = change if higher_is_better else -change
    text = f"{metric} {100 * change:+.1f}% (tolerance {100 * rel_tol:.0f}%)"
    if better < -rel_tol:
        return MetricCheck(metric, baseline, current, Status.REGRESSED, text, rel_tol)
    if better > rel_tol:
        return MetricCheck(metric, baseline, current, Status.IMPROVED, text, rel_tol)
    worse = better < -RELATIVE_RESOLUTION  # baselines are rounded: ignore sub-0.1% differences
    return MetricCheck(metric, baseline, current, Status.NOISE if worse else Status.PASS, text, rel_tol)


# --- one case, all cases ------------------------------------------------------------------------


def _combine(checks: list[MetricCheck]) -> tuple[Status, str]:
    for status in (Status.REGRESSED, Status.NOISE, Status.IMPROVED):
        hits = [c.reason for c in checks if c.status is status]
        if hits:
            return status, "; ".join(hits)
    compared = [c for c in checks if c.status is Status.PASS]
    others = [c.metric.split("_")[0] for c in compared if c.metric != "accuracy"]
    accuracy = [c.reason for c in compared if c.metric == "accuracy"]
    tail = f"{', '.join(others)} within tolerance" if others else ""
    return Status.PASS, "; ".join(accuracy + ([tail] if tail else [])) or "nothing to compare"


def compare_case(current: CaseSummary, entry: BaselineEntry, baseline_hw: str, t: Thresholds) -> Verdict:
    n_base = entry.accuracy.n
    common = dict(baseline_n=n_base, current_n=len(current.accuracy))
    if current.failed:
        return Verdict(current.case_id, Status.FAILED, "; ".join(current.errors), **common)
    acc = accuracy_check(entry.accuracy_values, current.accuracy_values, t)
    if entry.spec_hash != current.spec_hash:
        return Verdict(current.case_id, Status.INCOMPARABLE,
                       f"spec hash {current.spec_hash} differs from the baseline's {entry.spec_hash}: the case "
                       "definition changed; bless a new baseline", [acc], **common)
    if baseline_hw != current.hardware_key:
        return Verdict(current.case_id, Status.INCOMPARABLE,
                       f"hardware key {current.hardware_key!r} differs from the baseline's {baseline_hw!r}; "
                       f"bless a baseline for {current.hardware_key!r}", [acc], **common)
    checks = [
        acc,
        relative_check("train_throughput", entry.train_samples_per_s.median, median(current.train_throughput),
                       t.throughput.rel_tol, higher_is_better=True),
        relative_check("eval_throughput", entry.eval_samples_per_s.median, median(current.eval_throughput),
                       t.throughput.rel_tol, higher_is_better=True),
        relative_check("peak_memory", entry.peak_mb.median, median(current.peak_mb), t.memory.rel_tol,
                       higher_is_better=False),
    ]
    status, reason = _combine(checks)
    return Verdict(current.case_id, status, reason, checks, **common)


def check(current: dict[str, CaseSummary], baseline: Optional[Baseline],
          thresholds: dict[str, Thresholds], default: Thresholds = Thresholds()) -> list[Verdict]:
    """Verdicts for every case run and every baseline case not run, in a stable order."""
    verdicts = []
    entries = baseline.cases if baseline else {}
    for case_id, summary in current.items():
        t = thresholds.get(case_id, default)
        if case_id not in entries:
            status = Status.FAILED if summary.failed else Status.NEW
            reason = "; ".join(summary.errors) if summary.failed else "no baseline for this case"
            verdicts.append(Verdict(case_id, status, reason, current_n=len(summary.accuracy)))
        else:
            assert baseline is not None
            verdicts.append(compare_case(summary, entries[case_id], baseline.hardware_key, t))
    for case_id, entry in entries.items():
        if case_id not in current:
            verdicts.append(Verdict(case_id, Status.MISSING, "in the baseline but not in this run",
                                    baseline_n=entry.accuracy.n))
    return verdicts

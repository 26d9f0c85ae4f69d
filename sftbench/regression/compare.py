"""Pure comparison of case summaries with a baseline -> one explicit verdict per case.

Accuracy is judged on any machine (`accuracy.py`: a seed t-test against the baseline's seed
distribution, Holm across the run's cases, beyond a practical floor). Throughput and memory are
judged between runs, on the baseline's machine only (`speed.py`).
"""
from __future__ import annotations

from typing import Optional

from ..schema import Thresholds
from .accuracy import accuracy_check, decide_accuracy
from .baselines import Baseline, BaselineEntry
from .checks import MetricCheck, Status, Verdict
from .speed import Machine, baseline_noise, speed_checks
from .stats import holm
from .summary import CaseSummary

__all__ = ["MetricCheck", "Status", "Verdict", "check"]


def _combine(checks: list[MetricCheck]) -> tuple[Status, str]:
    for status in (Status.REGRESSED, Status.NOISE, Status.IMPROVED):
        hits = [c.reason for c in checks if c.status is status]
        if hits:
            return status, "; ".join(hits)
    compared = [c for c in checks if c.status is Status.PASS]
    others = [c.metric.split("_")[0] for c in compared if c.metric != "accuracy"]
    accuracy = [c.reason for c in compared if c.metric == "accuracy"]
    unjudged = (Status.SKIPPED, Status.MACHINE_DIFFERS)
    skipped = next((c.reason for c in checks if c.status in unjudged and c.metric != "accuracy"), "")
    tail = [f"{', '.join(others)} within tolerance"] if others else []
    tail += [skipped] if skipped else []
    return Status.PASS, "; ".join(accuracy + tail) or "nothing to compare"


def check(current: dict[str, CaseSummary], baseline: Optional[Baseline],
          thresholds: dict[str, Thresholds], default: Thresholds = Thresholds(), family: Optional[int] = None) -> list[Verdict]:
    """Verdicts for every case run and every baseline case not run, in a stable order; accuracy
    p-values are Holm-corrected across the compared cases (`family`: how many cases the run judges,
    when it is judged one case at a time, as the pytest plugin does)."""
    entries = baseline.cases if baseline else {}
    comparable: dict[str, tuple[CaseSummary, BaselineEntry, Thresholds]] = {}
    verdicts: dict[str, Verdict] = {}
    for case_id, summary in current.items():
        common = dict(baseline_n=entries[case_id].accuracy.n if case_id in entries else 0,
                      current_n=len(summary.accuracy))
        if summary.failed:
            verdicts[case_id] = Verdict(case_id, Status.FAILED, "; ".join(summary.errors), **common)
        elif case_id not in entries:
            verdicts[case_id] = Verdict(case_id, Status.NEW, "no baseline for this case", **common)
        elif entries[case_id].spec_hash != summary.spec_hash:
            verdicts[case_id] = Verdict(
                case_id, Status.INCOMPARABLE, f"spec hash {summary.spec_hash} differs from the baseline's "
                f"{entries[case_id].spec_hash}: the case definition changed; bless a new baseline", **common)
        else:
            comparable[case_id] = (summary, entries[case_id], thresholds.get(case_id, default))
    family = family or len(comparable)  # Holm's family: the detectable drop is stated at its strictest step
    pending = {case_id: (summary, entry, t, accuracy_check(entry, summary, t, family))
               for case_id, (summary, entry, t) in comparable.items()}
    verdicts.update(_decide(pending, baseline, family))
    ordered = [verdicts[case_id] for case_id in current]
    return ordered + [Verdict(case_id, Status.MISSING, "in the baseline but not in this run",
                              baseline_n=entry.accuracy.n) for case_id, entry in entries.items() if case_id not in current]


def _point_text(point: dict) -> str:
    return ", ".join(f"{key}={value}" for key, value in sorted(point.items()))


def _moved_point(entry: BaselineEntry, summary: CaseSummary) -> str:
    """A swept group that chose another point than when it was blessed: said, never hidden."""
    if not entry.sweep_point or entry.sweep_point == summary.sweep_point:
        return ""
    return (f"; the chosen sweep point moved from {_point_text(entry.sweep_point)} (baseline) to "
            f"{_point_text(summary.sweep_point)}")


def _decide(pending: dict[str, tuple[CaseSummary, BaselineEntry, Thresholds, MetricCheck]],
            baseline: Optional[Baseline], family: int) -> dict[str, Verdict]:
    tested = [case_id for case_id, (*_, acc) in pending.items() if acc.p_value is not None]
    # cases of the family judged elsewhere count as not significant (p = 1): one case judged alone
    # is held to the same standard as in a whole run
    p_values = [pending[c][3].p_value for c in tested] + [1.0] * max(0, family - len(tested))
    adjusted = dict(zip(tested, holm(p_values)))  # type: ignore[arg-type]
    noise = baseline_noise([e.runs for e in baseline.cases.values()] if baseline else [])
    out = {}
    for case_id, (summary, entry, t, acc) in pending.items():
        checks = [decide_accuracy(acc, adjusted.get(case_id), t.accuracy)]
        base = Machine(baseline.hardware_key if baseline else "", entry.runs, entry.env.get("fingerprint"))
        cur = Machine(summary.hardware_key, summary.runs, summary.env.get("fingerprint") if summary.env else None)
        checks += speed_checks(base, cur, t, noise)
        status, reason = _combine(checks)
        reason += _moved_point(entry, summary)
        out[case_id] = Verdict(case_id, status, reason, checks, entry.accuracy.n, len(summary.accuracy))
    return out

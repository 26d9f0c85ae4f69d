"""Pure comparison of case summaries with a baseline -> one explicit verdict per case.

Accuracy is judged on any machine; throughput and memory only on the baseline's hardware. An
accuracy drop is REGRESSED only when it is beyond both kinds of noise:
- practically and beyond seed noise: drop > max(abs_tol, k_sigma x sigma), sigma from the case's
  own learnt seed spread (the baseline's per-seed values), else `assumed_seed_std`;
- statistically: the one-sided p-value (exact McNemar on per-example results when both sides
  scored the same test split, else Welch with >= 2 seeds a side, else a two-proportion test),
  Holm-corrected across the cases of the run, is below alpha.
Throughput and memory are judged between runs, on the baseline's machine only (`speed.py`).
"""
from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, Optional

from ..schema import Thresholds
from .baselines import Baseline, BaselineEntry
from .checks import MetricCheck, Status, Verdict
from .speed import Machine, baseline_noise, speed_checks
from .stats import TestResult, holm, mcnemar, seed_sd_upper_bound, two_proportions, welch
from .summary import CaseSummary, mean_std

__all__ = ["MetricCheck", "Status", "Verdict", "check"]


def pp(x: float) -> str:
    return f"{100 * x:+.2f} pp"


# --- accuracy -----------------------------------------------------------------------------------


def seed_tolerance(baseline: list[float], current: list[float], t: Thresholds) -> tuple[float, str]:
    """max(abs_tol, k_sigma x sigma of the difference of means); sigma from the case's learnt seed
    spread, at its upper confidence bound (three seeds estimate a spread poorly)."""
    a = t.accuracy
    learnt = seed_sd_upper_bound([baseline, current], a.seed_sd_confidence)
    seed_std = learnt[1] if learnt else a.assumed_seed_std
    source = (f"learnt seed sd {100 * learnt[0]:.2f}, {100 * a.seed_sd_confidence:g} % upper bound "
              f"{100 * learnt[1]:.2f}") if learnt else f"assumed seed sd {100 * seed_std:.2f}"
    sigma = seed_std * math.sqrt(1 / len(baseline) + 1 / len(current))
    tolerance = max(a.abs_tol, a.k_sigma * sigma)
    return tolerance, (f"tolerance {100 * tolerance:.2f} pp = max(abs_tol {100 * a.abs_tol:.2f}, "
                       f"{a.k_sigma:g}σ {100 * a.k_sigma * sigma:.2f}; {source})")


def accuracy_test(entry: BaselineEntry, current: CaseSummary, alpha: float) -> Optional[TestResult]:
    """The strongest test both sides allow: paired per example, else per seed, else per proportion."""
    pairs = _paired_bits(entry, current)
    if pairs:
        return mcnemar(pairs, alpha)
    base, cur = entry.accuracy_values, current.accuracy_values
    if len(base) >= 2 and len(cur) >= 2:
        return welch(base, cur, alpha)
    n = current.test_n or entry.test_n
    if n:
        return two_proportions(mean_std(base)[0] or 0.0, mean_std(cur)[0] or 0.0, n * len(base), n * len(cur), alpha)
    return None


def _paired_bits(entry: BaselineEntry, current: CaseSummary) -> list[tuple[Any, Any]]:
    """Matched (baseline, current) correctness vectors: the same seed where both have it, otherwise
    seeds matched in order; only pairs that scored the same test split (digest) count."""
    base = {int(s): bits for s, bits in entry.per_example.items()}
    cur = dict(current.per_example)
    if not base or not cur:
        return []
    common = sorted(set(base) & set(cur))
    if common:
        matched = [(base[s], cur[s]) for s in common]
    else:
        b_seeds, c_seeds = sorted(base), sorted(cur)
        matched = [(base[b_seeds[i % len(b_seeds)]], cur[c]) for i, c in enumerate(c_seeds)]
    return [(b.bools(), c.bools()) for b, c in matched if b.test_digest == c.test_digest and b.n == c.n]


def accuracy_check(entry: BaselineEntry, current: CaseSummary, t: Thresholds) -> MetricCheck:
    """The accuracy comparison before multiple-testing correction (`decide_accuracy` finishes it)."""
    base, cur = entry.accuracy_values, current.accuracy_values
    if not base or not cur:
        return MetricCheck("accuracy", None, None, Status.SKIPPED, "no accuracy on one side")
    b_mean, c_mean = mean_std(base)[0], mean_std(cur)[0]
    assert b_mean is not None and c_mean is not None
    tolerance, limits = seed_tolerance(base, cur, t)
    test = accuracy_test(entry, current, t.accuracy.alpha)
    detectable = max(tolerance, test.detectable_drop) if test else tolerance
    return MetricCheck("accuracy", b_mean, c_mean, Status.PASS, limits, tolerance,
                       p_value=test.p_value if test else None, test=test.name if test else None,
                       losses=test.losses if test else None, gains=test.gains if test else None,
                       detectable_drop=detectable)


def decide_accuracy(check: MetricCheck, p_adjusted: Optional[float], alpha: float) -> MetricCheck:
    """Status from the practical/seed tolerance and the Holm-adjusted significance."""
    if check.status is Status.SKIPPED or check.delta is None or check.tolerance is None:
        return check
    delta, limits = check.delta, check.reason
    evidence = _evidence(check, p_adjusted, alpha)
    if delta > check.tolerance:
        status, reason = Status.IMPROVED, f"accuracy {pp(delta)} beyond {limits}"
    elif -delta > check.tolerance and (p_adjusted is None or p_adjusted < alpha):  # no test: tolerance alone
        status, reason = Status.REGRESSED, f"accuracy {pp(delta)} beyond {limits}; {evidence}"
    elif -delta > check.tolerance:
        status, reason = Status.NOISE, f"accuracy {pp(delta)} beyond {limits}, but not significant: {evidence}"
    elif delta < -1e-9:
        status, reason = Status.NOISE, f"accuracy {pp(delta)} within {limits}"
    else:
        status, reason = Status.PASS, f"accuracy {pp(delta)}"
    return replace(check, status=status, reason=reason, p_adjusted=p_adjusted)


def _evidence(check: MetricCheck, p_adjusted: Optional[float], alpha: float) -> str:
    if check.test is None or p_adjusted is None:
        return "no significance test possible (no test size, seeds or per-example results)"
    counts = f" (lost {check.losses}, gained {check.gains} examples)" if check.test == "mcnemar" else ""
    sign = "<" if p_adjusted < alpha else "≥"
    return (f"{check.test}{counts} p={check.p_value:.3g}, Holm p={p_adjusted:.3g} {sign} α={alpha:g}; "
            f"detectable drop {100 * (check.detectable_drop or math.inf):.2f} pp")


# --- one case, all cases ------------------------------------------------------------------------


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
          thresholds: dict[str, Thresholds], default: Thresholds = Thresholds()) -> list[Verdict]:
    """Verdicts for every case run and every baseline case not run, in a stable order; accuracy
    p-values are Holm-corrected across the compared cases."""
    entries = baseline.cases if baseline else {}
    pending: dict[str, tuple[CaseSummary, BaselineEntry, Thresholds, MetricCheck]] = {}
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
            t = thresholds.get(case_id, default)
            pending[case_id] = (summary, entries[case_id], t, accuracy_check(entries[case_id], summary, t))
    verdicts.update(_decide(pending, baseline))
    ordered = [verdicts[case_id] for case_id in current]
    return ordered + [Verdict(case_id, Status.MISSING, "in the baseline but not in this run",
                              baseline_n=entry.accuracy.n) for case_id, entry in entries.items() if case_id not in current]


def _decide(pending: dict[str, tuple[CaseSummary, BaselineEntry, Thresholds, MetricCheck]],
            baseline: Optional[Baseline]) -> dict[str, Verdict]:
    tested = [case_id for case_id, (*_, acc) in pending.items() if acc.p_value is not None]
    alpha = min((pending[c][2].accuracy.alpha for c in tested), default=0.05)
    adjusted = dict(zip(tested, holm([pending[c][3].p_value for c in tested], alpha)))  # type: ignore[misc]
    noise = baseline_noise([e.runs for e in baseline.cases.values()] if baseline else [])
    out = {}
    for case_id, (summary, entry, t, acc) in pending.items():
        checks = [decide_accuracy(acc, adjusted.get(case_id), t.accuracy.alpha)]
        base = Machine(baseline.hardware_key if baseline else "", entry.runs, entry.env.get("fingerprint"))
        cur = Machine(summary.hardware_key, summary.runs, summary.env.get("fingerprint") if summary.env else None)
        checks += speed_checks(base, cur, t, noise)
        status, reason = _combine(checks)
        out[case_id] = Verdict(case_id, status, reason, checks, entry.accuracy.n, len(summary.accuracy))
    return out

"""Accuracy verdicts: is a run's top-1 below what the baseline's seeds allow?

A drop of the mean top-1 is REGRESSED when it is both
- practical: beyond `abs_tol`;
- significant: the one-sided seed t-test of the new seeds against the baseline's seed distribution
  (`stats.seed_t_test`, a t prediction interval for a new mean), Holm-corrected across the run's
  cases, below alpha.
The seed spread, not the test set, is what moves top-1 between unchanged runs, so the seeds are the
unit of evidence. With one seed on each side no spread has been learnt: the test falls back to
test-set noise alone (exact McNemar on per-example results, else two proportions) and says so.
The detectable drop stated is what this rule catches with `power` at Holm's strictest step
(alpha / cases), so it is an honest promise, not the critical value.
"""
from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, Optional

from scipy import stats as scipy_stats

from ..schema import AccuracyThresholds, Thresholds
from .baselines import BaselineEntry
from .checks import MetricCheck, Status
from .stats import (
    TestResult,
    mcnemar,
    seed_se,
    seed_t_test,
    t_detectable_drop,
    two_proportions,
)
from .summary import CaseSummary, mean_std


def pp(x: float) -> str:
    return f"{100 * x:+.2f} pp"


def paired_bits(entry: BaselineEntry, current: CaseSummary) -> list[tuple[Any, Any]]:
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


def _split_variance(entry: BaselineEntry, current: CaseSummary, accuracy: float) -> float:
    """Test-set sampling variance of the difference when the two sides scored different test splits
    (the baseline's seed spread was learnt on one fixed split and does not contain it)."""
    base = {(b.test_digest, b.n) for b in entry.per_example.values()}
    cur = {(c.test_digest, c.n) for c in current.per_example.values()}
    if not base or not cur or base & cur:
        return 0.0
    n_base, n_cur = next(iter(base))[1], next(iter(cur))[1]
    return accuracy * (1 - accuracy) * (1 / n_base + 1 / n_cur)


def first_step_alpha(a: AccuracyThresholds, family: int) -> float:
    """Holm's strictest step over `family` cases: the level the stated limits are computed at."""
    return a.alpha / max(1, family)


def fallback_test(entry: BaselineEntry, current: CaseSummary, alpha: float) -> Optional[TestResult]:
    """One seed a side: test-set noise only. McNemar where the bits pair (unless they are identical:
    no discordant pair says nothing about the noise), else two proportions over the test size."""
    pairs = paired_bits(entry, current)
    if pairs:
        paired = mcnemar(pairs, alpha)
        if paired.losses or paired.gains:
            return paired
    n = current.test_n or entry.test_n
    if not n:
        return None
    b_mean, c_mean = mean_std(entry.accuracy_values)[0] or 0.0, mean_std(current.accuracy_values)[0] or 0.0
    return two_proportions(b_mean, c_mean, n * len(entry.accuracy_values), n * len(current.accuracy_values), alpha)


def accuracy_test(entry: BaselineEntry, current: CaseSummary, a: AccuracyThresholds,
                  family: int = 1) -> Optional[TestResult]:
    """The seed t-test where a spread is known, else the one-seed fallback; at Holm's first step."""
    base, cur = entry.accuracy_values, current.accuracy_values
    alpha = first_step_alpha(a, family)
    extra = _split_variance(entry, current, mean_std(base)[0] or 0.0)
    return seed_t_test(base, cur, alpha, a.power, extra) or fallback_test(entry, current, alpha)


def detectable_drop(test: Optional[TestResult], a: AccuracyThresholds) -> float:
    """The true drop caught with probability `power`: significant and beyond abs_tol."""
    if test is None:
        return math.inf
    if test.se is None:
        return max(test.detectable_drop, a.abs_tol)
    return _beyond_floor(test.detectable_drop, test.se, a)


def _beyond_floor(significant_drop: float, se: float, a: AccuracyThresholds) -> float:
    return max(significant_drop, a.abs_tol + float(scipy_stats.norm.isf(1 - a.power)) * se)


def planned_detectable_drop(seed_sd: float, baseline_seeds: int, new_seeds: int, a: AccuracyThresholds,
                            family: int = 1) -> float:
    """The detectable drop a baseline of `baseline_seeds` would give a check of `new_seeds`, if the
    seed sd is `seed_sd` (bless-time planning; the same rule as `accuracy_test`)."""
    dof = baseline_seeds - 1 + max(0, new_seeds - 1)  # as stats.pooled_sd counts them
    if dof < 1:
        return math.inf
    se = seed_se(seed_sd, baseline_seeds, new_seeds)
    return _beyond_floor(t_detectable_drop(se, dof, first_step_alpha(a, family), a.power), se, a)


def critical_drop(test: Optional[TestResult], a: AccuracyThresholds, family: int) -> float:
    """The observed drop beyond which the test is significant at Holm's first step (display)."""
    if test is None or test.se is None or test.dof is None:
        return a.abs_tol
    return max(a.abs_tol, float(scipy_stats.t.isf(first_step_alpha(a, family), test.dof)) * test.se)


def describe(test: Optional[TestResult], n_base: int, n_cur: int) -> str:
    if test is None:
        return "no significance test possible (no test size, seeds or per-example results)"
    if test.name == "seed-t":
        assert test.seed_sd is not None
        return (f"seed t-test, {n_base} baseline seed(s) and {n_cur} new, learnt seed sd "
                f"{100 * test.seed_sd:.2f} pp ({test.dof} dof)")
    return (f"{n_base} baseline seed and {n_cur} new: no seed noise learnt, test-set noise only ({test.name}); "
            "bless two or more seeds")


def accuracy_check(entry: BaselineEntry, current: CaseSummary, t: Thresholds, family: int = 1) -> MetricCheck:
    """The accuracy comparison before multiple-testing correction (`decide_accuracy` finishes it)."""
    base, cur = entry.accuracy_values, current.accuracy_values
    if not base or not cur:
        return MetricCheck("accuracy", None, None, Status.SKIPPED, "no accuracy on one side")
    b_mean, c_mean = mean_std(base)[0], mean_std(cur)[0]
    assert b_mean is not None and c_mean is not None
    a = t.accuracy
    test = accuracy_test(entry, current, a, family)
    tolerance = critical_drop(test, a, family)
    limits = f"tolerance {100 * tolerance:.2f} pp; {describe(test, len(base), len(cur))}"
    return MetricCheck("accuracy", b_mean, c_mean, Status.PASS, limits, tolerance,
                       p_value=test.p_value if test else None, test=test.name if test else None,
                       losses=test.losses if test else None, gains=test.gains if test else None,
                       detectable_drop=detectable_drop(test, a))


def decide_accuracy(check: MetricCheck, p_adjusted: Optional[float], a: AccuracyThresholds) -> MetricCheck:
    """Status from the practical floor and the Holm-adjusted significance."""
    if check.status is Status.SKIPPED or check.delta is None or check.tolerance is None:
        return check
    delta, limits = check.delta, check.reason
    evidence = _evidence(check, p_adjusted, a)
    significant = p_adjusted is None or p_adjusted < a.alpha  # no test at all: the floor alone
    if delta > check.tolerance:
        status, reason = Status.IMPROVED, f"accuracy {pp(delta)} beyond {limits}"
    elif -delta > a.abs_tol and significant:
        status, reason = Status.REGRESSED, "; ".join(filter(None, [f"accuracy {pp(delta)}", evidence, limits]))
    elif -delta > a.abs_tol:
        status, reason = Status.NOISE, f"accuracy {pp(delta)}, not significant: {evidence}; {limits}"
    elif delta < -1e-9:
        status, reason = Status.NOISE, f"accuracy {pp(delta)} within abs_tol {100 * a.abs_tol:.2f} pp; {limits}"
    else:
        status, reason = Status.PASS, f"accuracy {pp(delta)}"
    return replace(check, status=status, reason=reason, p_adjusted=p_adjusted)


def _evidence(check: MetricCheck, p_adjusted: Optional[float], a: AccuracyThresholds) -> str:
    if check.test is None or p_adjusted is None:
        return ""  # the limits say why
    counts = f" (lost {check.losses}, gained {check.gains} examples)" if check.test == "mcnemar" else ""
    sign = "<" if p_adjusted < a.alpha else "≥"
    return (f"{check.test}{counts} p={check.p_value:.3g}, Holm p={p_adjusted:.3g} {sign} α={a.alpha:g}; "
            f"detectable drop {100 * (check.detectable_drop or math.inf):.2f} pp at {100 * a.power:g} % power")

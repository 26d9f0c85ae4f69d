"""The statistical tests verdicts use, from scipy and statsmodels; pure functions of numbers.

- paired, per example: exact one-sided McNemar (a binomial test on the discordant pairs);
- per seed, when both sides have >= 2 seeds: one-sided Welch t-test;
- otherwise: a one-sided two-proportion z-test over the test-set size;
- many cases at once: Holm's step-down correction.
Each test also says how large a drop it could detect (its minimum detectable drop).
"""
from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional

import numpy as np
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportions_ztest


@dataclass(frozen=True)
class TestResult:
    name: str  # mcnemar | welch | two-proportion
    p_value: float  # one-sided: "current is worse than baseline"
    detectable_drop: float  # smallest drop in accuracy this test would call significant at alpha
    losses: Optional[int] = None  # McNemar: examples right in the baseline, wrong now
    gains: Optional[int] = None  # ... and wrong in the baseline, right now


def mcnemar(pairs: Sequence[tuple[np.ndarray, np.ndarray]], alpha: float) -> TestResult:
    """Exact one-sided McNemar pooled over (baseline, current) correctness vectors of matched seeds."""
    losses = sum(int((b & ~c).sum()) for b, c in pairs)
    gains = sum(int((~b & c).sum()) for b, c in pairs)
    examples = sum(len(b) for b, _ in pairs)
    discordant = losses + gains
    p = stats.binomtest(losses, discordant, 0.5, alternative="greater").pvalue if discordant else 1.0
    return TestResult("mcnemar", float(p), mcnemar_detectable_drop(discordant, examples, alpha), losses, gains)


def mcnemar_detectable_drop(discordant: int, examples: int, alpha: float) -> float:
    """(losses - gains) / examples at the smallest loss count that the exact test rejects."""
    if not discordant or not examples:
        return math.inf
    threshold = int(stats.binom.isf(alpha, discordant, 0.5)) + 1  # P(X >= threshold) <= alpha
    return (2 * threshold - discordant) / examples if threshold <= discordant else math.inf


def welch(baseline: Sequence[float], current: Sequence[float], alpha: float) -> TestResult:
    """One-sided Welch t-test on per-seed accuracies (both sides need >= 2 seeds)."""
    sb, sc = statistics.variance(baseline), statistics.variance(current)
    se = math.sqrt(sb / len(baseline) + sc / len(current))
    if se == 0:  # no spread on either side: the t statistic is undefined
        p = 0.0 if statistics.fmean(current) < statistics.fmean(baseline) else 1.0
        return TestResult("welch", p, 0.0)
    p = stats.ttest_ind(baseline, current, equal_var=False, alternative="greater").pvalue
    dof = se**4 / ((sb / len(baseline)) ** 2 / (len(baseline) - 1) + (sc / len(current)) ** 2 / (len(current) - 1))
    return TestResult("welch", float(p), float(stats.t.isf(alpha, dof) * se))


def two_proportions(baseline: float, current: float, n_baseline: int, n_current: int, alpha: float) -> TestResult:
    """One-sided two-proportion z-test of mean accuracies over n_* scored examples a side."""
    counts = np.array([round(current * n_current), round(baseline * n_baseline)])
    observations = np.array([n_current, n_baseline])
    if counts.sum() in (0, observations.sum()):  # all wrong or all right on both sides: no variance
        return TestResult("two-proportion", 1.0, math.inf)
    _, p = proportions_ztest(counts, observations, alternative="smaller")
    pooled = counts.sum() / observations.sum()
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_baseline + 1 / n_current))
    return TestResult("two-proportion", float(p), float(stats.norm.isf(alpha) * se))


def seed_sd_upper_bound(groups: Sequence[Sequence[float]], confidence: float) -> Optional[tuple[float, float]]:
    """(pooled sd, its one-sided upper confidence bound) of per-seed values, each group around its own
    mean (chi-square interval); None when no group has two seeds."""
    dof = sum(len(g) - 1 for g in groups if len(g) > 1)
    if not dof:
        return None
    pooled = math.sqrt(sum((len(g) - 1) * statistics.variance(g) for g in groups if len(g) > 1) / dof)
    return pooled, pooled * math.sqrt(dof / stats.chi2.ppf(1 - confidence, dof))


def holm(p_values: Sequence[float], alpha: float) -> list[float]:
    """Holm-adjusted p-values (family-wise error rate over the cases of one run)."""
    if not p_values:
        return []
    return [float(p) for p in multipletests(list(p_values), alpha=alpha, method="holm")[1]]

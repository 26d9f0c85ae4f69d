"""The statistical tests verdicts use, from scipy and statsmodels; pure functions of numbers.

- per seed, when the seeds show a spread (>= 2 seeds on either side): a one-sided t-test of the new
  seeds against the baseline's seed distribution (a t prediction interval for a new mean), the seed
  sd pooled over both sides;
- paired, per example: exact one-sided McNemar (a binomial test on the discordant pairs);
- per seed, both sides >= 2 seeds (run diffs): one-sided Welch t-test;
- otherwise: a one-sided two-proportion z-test over the test-set size;
- many cases at once: Holm's step-down correction.
Each test also says how large a drop it could detect (its minimum detectable drop).
"""
from __future__ import annotations

import functools
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional

import numpy as np
from scipy import stats
from scipy.optimize import brentq
from statsmodels.stats.proportion import proportions_ztest


@dataclass(frozen=True)
class TestResult:
    name: str  # seed-t | mcnemar | welch | two-proportion
    p_value: float  # one-sided: "current is worse than baseline"
    detectable_drop: float  # smallest drop in accuracy this test would call significant at alpha
    losses: Optional[int] = None  # McNemar: examples right in the baseline, wrong now
    gains: Optional[int] = None  # ... and wrong in the baseline, right now
    seed_sd: Optional[float] = None  # seed-t: the pooled seed sd, its degrees of freedom, the drop's se
    dof: Optional[int] = None
    se: Optional[float] = None


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


def seed_t_test(baseline: Sequence[float], current: Sequence[float], alpha: float, power: float,
                extra_variance: float = 0.0) -> Optional[TestResult]:
    """Is the mean of the new seeds below the baseline seeds' distribution? t = drop / (s sqrt(1/n + 1/m)),
    s the seed sd pooled over both sides (each around its own mean), t(dof) under "unchanged".
    `extra_variance` adds the test-set sampling variance when the sides scored different test splits.
    None when neither side has two seeds (no spread learnt). The detectable drop is the drop this
    test flags with probability `power` (non-central t), not merely the critical value."""
    pooled = pooled_sd([baseline, current])
    if pooled is None:
        return None
    sd, dof = pooled
    se = seed_se(sd, len(baseline), len(current), extra_variance)
    drop = statistics.fmean(baseline) - statistics.fmean(current)
    if se == 0:  # every seed scored the same: any drop is beyond the seed noise
        return TestResult("seed-t", 0.0 if drop > 0 else 1.0, 0.0, seed_sd=0.0, dof=dof, se=0.0)
    p = float(stats.t.sf(drop / se, dof))
    return TestResult("seed-t", p, t_detectable_drop(se, dof, alpha, power), seed_sd=sd, dof=dof, se=se)


def pooled_sd(groups: Sequence[Sequence[float]]) -> Optional[tuple[float, int]]:
    """(sd, dof) of values pooled over groups, each around its own mean; None when no group has two."""
    spread = [g for g in groups if len(g) > 1]
    dof = sum(len(g) - 1 for g in spread)
    if not dof:
        return None
    return math.sqrt(sum((len(g) - 1) * statistics.variance(g) for g in spread) / dof), dof


def seed_se(sd: float, baseline_seeds: int, new_seeds: int, extra_variance: float = 0.0) -> float:
    """Standard error of (baseline mean - new mean) for seeds of standard deviation `sd`."""
    return math.sqrt(sd**2 * (1 / baseline_seeds + 1 / new_seeds) + extra_variance)


def t_detectable_drop(se: float, dof: int, alpha: float, power: float) -> float:
    """The true drop that a one-sided t-test at `alpha` rejects with probability `power`."""
    return se * _noncentrality(dof, alpha, power)


@functools.lru_cache(maxsize=1024)
def _noncentrality(dof: int, alpha: float, power: float) -> float:
    """drop / se at the stated power: it depends on dof, alpha and power only (non-central t)."""
    critical = stats.t.isf(alpha, dof)

    def shortfall(delta: float) -> float:
        return float(stats.nct.sf(critical, dof, delta)) - power

    high = critical + 4.0
    while shortfall(high) < 0:
        high *= 2
    return float(brentq(shortfall, 0.0, high, xtol=1e-6))


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


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values (family-wise error rate over the cases of one run). Written out:
    statsmodels' multipletests runs a full garbage collection on every call (0.27 s here)."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted, running = [0.0] * m, 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted

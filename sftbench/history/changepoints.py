"""Steps in a series: candidates from `ruptures` (binary segmentation of the standardised run means), each then
confirmed by a Welch t-test of the two segments it separates, Bonferroni across the candidates.

Why two stages: the search finds where the mean moves, but its penalty only sets how many steps it
tries; the test says whether each step is beyond the noise. The noise is the series' own:
accuracy compares the seed values of the runs on either side (each run's seed noise counts), speed
and memory compare log run medians (the run is the unit, since windows of one run are not
independent). `benchmarks/history/changepoint_choice.py` measured PELT against binary
segmentation on planted steps and on noise-only series (docs/history.md).
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import ruptures
from scipy import stats

from .series import HIGHER_IS_BETTER, RunPoint, Series

MIN_SIZE = 2  # runs on each side of a step: a step in the last night is seen after the second one
PENALTY = 6.0  # times log(runs), on run means standardised by their robust noise (measured: docs/history.md)
ALPHA = 0.01
MIN_EFFECT = {"top1": 0.005, "train_throughput": 0.05, "eval_throughput": 0.05, "peak_mb": 0.05}  # abs / relative


@dataclass(frozen=True)
class ChangePoint:
    series: Series
    index: int  # the first run after the step
    before: float
    after: float
    p_value: float
    ci: tuple[float, float]  # of the delta, 95 %

    @property
    def last_good(self) -> RunPoint:
        return self.series.points[self.index - 1]

    @property
    def first_bad(self) -> RunPoint:
        return self.series.points[self.index]

    @property
    def delta(self) -> float:
        """after - before: points of top-1 (a fraction), else relative (0.3 = 30 % more)."""
        return self.after - self.before if self.series.metric == "top1" else self.after / self.before - 1

    @property
    def worse(self) -> bool:
        return (self.delta < 0) == HIGHER_IS_BETTER[self.series.metric]

    @property
    def cause(self) -> dict[str, list[Optional[str]]]:
        """What changed in the environment between the last good run and the first bad one."""
        good, bad = self.last_good.env, self.first_bad.env
        return {name: [good[name], bad[name]] for name in good if good[name] != bad[name]}

    def to_json(self) -> dict[str, Any]:
        side = lambda p: {"run_id": p.run_id, "commit": p.commit, "date": p.date}  # noqa: E731
        return {"suite": self.series.suite, "case_id": self.series.case_id, "metric": self.series.metric,
                "fingerprint": self.series.fingerprint, "last_good": side(self.last_good),
                "first_bad": side(self.first_bad), "before": self.before, "after": self.after, "delta": self.delta,
                "delta_ci95": list(self.ci), "p_value": self.p_value, "worse": self.worse, "cause": self.cause}


def _samples(series: Series, start: int, end: int) -> list[float]:
    """The evidence of runs start..end-1: seed values for accuracy, log run means for speed."""
    points = series.points[start:end]
    if series.metric == "top1":
        return [v for p in points for v in p.values]
    return [math.log(p.mean) for p in points]


def _run_level(series: Series) -> np.ndarray:
    means = np.array([p.mean for p in series.points])
    return means if series.metric == "top1" else np.log(means)


def _noise(series: Series, level: np.ndarray) -> float:
    """Robust sd of one run's mean: from the differences of neighbours (a step moves one of them),
    never below what the seeds say about one run's mean."""
    diffs = np.diff(level)
    robust = float(np.median(np.abs(diffs - np.median(diffs)))) / 0.6745 / math.sqrt(2) if len(diffs) else 0.0
    seed_sds = [p.sd / math.sqrt(p.n) for p in series.points if p.sd]
    floor = statistics.fmean(seed_sds) if series.metric == "top1" and seed_sds else 0.0
    return max(robust, floor, 1e-9 * (float(np.abs(level).max()) or 1.0))


def candidates(level: np.ndarray, noise: float, method: str = "binseg") -> list[int]:
    """Indices where a new segment starts (never 0), from `ruptures`."""
    z = ((level - np.median(level)) / noise).reshape(-1, 1)
    search = ruptures.Pelt(model="l2", min_size=MIN_SIZE, jump=1) if method == "pelt" else \
        ruptures.Binseg(model="l2", min_size=MIN_SIZE, jump=1)
    return [b for b in search.fit(z).predict(pen=PENALTY * math.log(len(level)))[:-1]]


def _welch(left: list[float], right: list[float]) -> tuple[float, tuple[float, float]]:
    if statistics.pvariance(left) == 0 and statistics.pvariance(right) == 0:  # two constant sides (bit-identical seeds)
        same = statistics.fmean(left) == statistics.fmean(right)
        diff = statistics.fmean(right) - statistics.fmean(left)
        return (1.0 if same else 0.0), (diff, diff)
    result = stats.ttest_ind(right, left, equal_var=False)
    ci = result.confidence_interval(0.95)
    return float(result.pvalue), (float(ci.low), float(ci.high))


def detect(series: Series, method: str = "binseg", alpha: float = ALPHA) -> list[ChangePoint]:
    """The confirmed steps of one series, oldest first."""
    if len(series.points) < 2 * MIN_SIZE:
        return []
    level = _run_level(series)
    bounds = candidates(level, _noise(series, level), method)
    edges = [0, *bounds, len(series.points)]
    found = []
    for k, b in enumerate(bounds, start=1):
        left, right = _samples(series, edges[k - 1], b), _samples(series, b, edges[k + 1])
        p, ci = _welch(left, right)
        before, after = statistics.fmean(left), statistics.fmean(right)
        if series.metric != "top1":
            before, after, ci = math.exp(before), math.exp(after), (math.expm1(ci[0]), math.expm1(ci[1]))
        point = ChangePoint(series, b, before, after, min(1.0, p * len(bounds)), ci)
        if point.p_value < alpha and abs(point.delta) >= MIN_EFFECT[series.metric]:
            found.append(point)
    return found

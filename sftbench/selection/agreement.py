"""How well a score's ranking agrees with fine-tuned accuracy: weighted Kendall tau (the top of the
ranking counts most), Pearson r, a bootstrap 90 % interval over candidates, and the regret of
picking the score's top candidate."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Optional

import numpy as np
from scipy.stats import pearsonr, weightedtau

from ..results.record import Record

BOOTSTRAP = 1000
MIN_CANDIDATES = 3  # a ranking of two says nothing about agreement


@dataclass
class Agreement:
    candidates: int
    tau: float
    tau_low: float  # bootstrap 5th and 95th percentiles over candidates
    tau_high: float
    pearson: float
    top1_matches: bool
    regret_pp: float  # best fine-tuned accuracy minus the accuracy of the score's pick, in points
    pick: str
    best: str


def fine_tuned(records: Iterable[Record], strategy: str) -> dict[str, dict[str, float]]:
    """dataset label -> backbone label -> mean top-1 over seeds of `strategy`'s finished cases."""
    pooled: dict[tuple[str, str], list[float]] = {}
    for r in records:
        if r.ok and r.labels.strategy == strategy and r.top1 is not None:
            pooled.setdefault((r.labels.dataset, r.labels.backbone), []).append(r.top1)
    out: dict[str, dict[str, float]] = {}
    for (dataset, backbone), values in pooled.items():
        out.setdefault(dataset, {})[backbone] = float(np.mean(values))
    return out


def agreement(score: dict[str, float], truth: dict[str, float], seed: int = 0) -> Optional[Agreement]:
    names = sorted(set(score) & set(truth))
    if len(names) < MIN_CANDIDATES:
        return None
    s, t = np.array([score[n] for n in names]), np.array([truth[n] for n in names])
    pick, best = names[int(np.argmax(s))], names[int(np.argmax(t))]
    low, high = _bootstrap_tau(s, t, seed)
    return Agreement(len(names), _tau(s, t), low, high, _pearson(s, t), truth[pick] == truth[best],
                     100 * (truth[best] - truth[pick]), pick, best)


def _tau(s: np.ndarray, t: np.ndarray) -> float:
    if np.ptp(s) == 0 or np.ptp(t) == 0:
        return float("nan")
    return float(weightedtau(s, t).statistic)


def _pearson(s: np.ndarray, t: np.ndarray) -> float:
    if np.ptp(s) == 0 or np.ptp(t) == 0:
        return float("nan")
    return float(pearsonr(s, t).statistic)


def _bootstrap_tau(s: np.ndarray, t: np.ndarray, seed: int) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    taus = [_tau(s[i], t[i]) for i in rng.integers(0, len(s), (BOOTSTRAP, len(s)))]
    taus = [x for x in taus if np.isfinite(x)]
    if not taus:
        return float("nan"), float("nan")
    return float(np.percentile(taus, 5)), float(np.percentile(taus, 95))

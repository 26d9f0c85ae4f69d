"""Run-to-run diff: every case of run A against run B, with the verdicts' statistics and no baseline.

Two-sided: an upgrade can make things better or worse, and both are news. Per case the test is
the strongest the data allows: McNemar on the per-example results of matched seeds, else Welch
on per-seed accuracies, else a two-proportion test. Holm adjusts the p-values across cases.
Speed and memory are compared only when both runs ran on the same hardware.
"""
from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass
from typing import Any, Optional

from ..results.record import Record
from .baselines import ENV_KEYS
from .stats import TestResult, holm, mcnemar, two_proportions, welch

DIFF_ENV_KEYS = (*(k for k in ENV_KEYS if k != "fingerprint"), "hardware_key", "driver")  # the digest stands for it


@dataclass
class CaseDiff:
    case_id: str
    labels: dict[str, str]
    top1_a: Optional[float]
    top1_b: Optional[float]
    n_a: int
    n_b: int
    test: Optional[str] = None
    p_value: Optional[float] = None  # two-sided, Holm-adjusted across cases
    train_change: Optional[float] = None  # relative change of wall img/s, same hardware only
    peak_change: Optional[float] = None
    seed_sd: Optional[float] = None  # the case's seed noise, from whichever run has >= 2 seeds
    caveat: str = ""  # why a change is not judged
    significant: bool = False

    @property
    def delta(self) -> Optional[float]:
        return None if self.top1_a is None or self.top1_b is None else self.top1_b - self.top1_a


@dataclass
class RunDiff:
    cases: list[CaseDiff]
    env_changes: dict[str, tuple[Any, Any]]  # key -> (A, B), only the keys that differ
    same_hardware: bool
    alpha: float


def diff_runs(a: list[Record], b: list[Record], alpha: float = 0.05) -> RunDiff:
    by_case_a, by_case_b = _by_case(a), _by_case(b)
    env_a, env_b = _env(a), _env(b)
    same_hw = env_a.get("hardware_key") == env_b.get("hardware_key")
    cases, raw_p = [], []
    for case_id in sorted(set(by_case_a) | set(by_case_b)):
        left, right = by_case_a.get(case_id, []), by_case_b.get(case_id, [])
        case = _case(case_id, left, right, same_hw, alpha)
        cases.append(case)
        raw_p.append(case.p_value)
    tested = [i for i, p in enumerate(raw_p) if p is not None]
    for i, adjusted in zip(tested, holm([raw_p[i] for i in tested])):
        case = cases[i]
        case.p_value = adjusted
        # significant: beyond the test's noise and, where it is known, beyond the case's seed noise
        beyond_seeds = case.seed_sd is None or abs(case.delta or 0.0) > case.seed_sd
        case.significant = adjusted <= alpha and beyond_seeds and not case.caveat
    changes = {k: (env_a.get(k), env_b.get(k)) for k in DIFF_ENV_KEYS if env_a.get(k) != env_b.get(k)}
    return RunDiff(cases, changes, same_hw, alpha)


def _by_case(records: list[Record]) -> dict[str, list[Record]]:
    latest: dict[str, Record] = {}
    for r in records:  # the last record of a run key wins, as everywhere else
        latest[r.run_key] = r
    out: dict[str, list[Record]] = {}
    for r in latest.values():
        if r.ok and r.metrics is not None:
            out.setdefault(r.case_id, []).append(r)
    return out


def _env(records: list[Record]) -> dict[str, Any]:
    """The most common value of each environment key over a run's records."""
    values: dict[str, Counter] = {}
    for r in records:
        for key in DIFF_ENV_KEYS:
            values.setdefault(key, Counter())[str(r.env.get(key))] += 1
    return {k: c.most_common(1)[0][0] for k, c in values.items()}


def _case(case_id: str, a: list[Record], b: list[Record], same_hw: bool, alpha: float) -> CaseDiff:
    first = (a or b)[0]
    labels = {"backbone": first.labels.backbone, "dataset": first.labels.dataset, "strategy": first.labels.strategy}
    acc_a, acc_b = [r.metrics.top1 for r in a], [r.metrics.top1 for r in b]
    case = CaseDiff(case_id, labels, _mean(acc_a), _mean(acc_b), len(a), len(b))
    if a and b:
        test = _two_sided(a, b, alpha)
        case.test, case.p_value = test.name, test.p_value
        spreads = [statistics.stdev(acc) for acc in (acc_a, acc_b) if len(acc) >= 2]
        case.seed_sd = max(spreads) if spreads else None
        if test.name == "two-proportion":  # one seed a side, and not the same one: seed noise is unknown
            case.caveat = "different single seeds: seed noise unknown, not judged (run >= 2 seeds or the same seeds)"
        if same_hw:
            case.train_change = _relative(_median([r.train_wall_samples_per_s for r in a]),
                                          _median([r.train_wall_samples_per_s for r in b]))
            case.peak_change = _relative(_median([r.memory.peak_mb if r.memory else None for r in a]),
                                         _median([r.memory.peak_mb if r.memory else None for r in b]))
    return case


def _two_sided(a: list[Record], b: list[Record], alpha: float) -> TestResult:
    """The strongest available test, run both ways; p = 2 x the smaller one-sided p, capped at 1."""
    worse, better = _one_sided(a, b, alpha), _one_sided(b, a, alpha)
    return TestResult(worse.name, min(1.0, 2 * min(worse.p_value, better.p_value)), worse.detectable_drop,
                      worse.losses, worse.gains)


def _one_sided(before: list[Record], after: list[Record], alpha: float) -> TestResult:
    """p that `after` is worse than `before`."""
    seeds_before = {r.seed: r for r in before}
    pairs = [(seeds_before[r.seed].per_example.bools(), r.per_example.bools()) for r in after
             if r.seed in seeds_before and r.per_example and seeds_before[r.seed].per_example
             and r.per_example.test_digest == seeds_before[r.seed].per_example.test_digest]
    if pairs:
        return mcnemar(pairs, alpha)
    acc_before, acc_after = [r.metrics.top1 for r in before], [r.metrics.top1 for r in after]
    if len(acc_before) >= 2 and len(acc_after) >= 2:
        return welch(acc_before, acc_after, alpha)
    n_before, n_after = _test_n(before), _test_n(after)
    return two_proportions(statistics.fmean(acc_before), statistics.fmean(acc_after), n_before, n_after, alpha)


def _test_n(records: list[Record]) -> int:
    sizes = [r.dataset.sizes.get("test", 0) if r.dataset else 0 for r in records]
    return max(1, sum(sizes))


def _mean(values: list[float]) -> Optional[float]:
    return statistics.fmean(values) if values else None


def _median(values: list[Optional[float]]) -> Optional[float]:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def _relative(before: Optional[float], after: Optional[float]) -> Optional[float]:
    return None if not before or after is None else after / before - 1.0

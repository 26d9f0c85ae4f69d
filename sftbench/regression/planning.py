"""Seed planning at bless time: what a baseline's seeds buy. Per case, the learnt seed sd, the drop
a check of one and of three new seeds would catch (80 % power, Holm across the suite's cases), and
how many seeds reach a target drop: baseline seeds for a one-seed check, else new seeds per check
(one new seed carries its own seed noise, so past some spread no baseline is enough)."""
from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Optional

from ..schema import AccuracyThresholds
from .accuracy import planned_detectable_drop
from .baselines import BaselineEntry

MAX_SEEDS = 100  # beyond this the plan says "unreachable": the suite needs less seed noise


@dataclass(frozen=True)
class SeedPlan:
    case_id: str
    seeds: int
    seed_sd: Optional[float]  # None: fewer than two seeds, no spread learnt
    detectable_one: Optional[float]  # with one new seed
    detectable_three: Optional[float]
    baseline_seeds_for_target: Optional[int]  # for a one-seed check; None: unreachable
    new_seeds_for_target: Optional[int]  # per check, with this baseline; None: unreachable


def _smallest(values: range, reaches) -> Optional[int]:
    return next((v for v in values if reaches(v)), None)


def plan(case_id: str, entry: BaselineEntry, a: AccuracyThresholds, target: float, family: int) -> SeedPlan:
    values = entry.accuracy_values
    n = len(values)
    if n < 2:
        return SeedPlan(case_id, n, None, None, None, None, None)
    sd = statistics.stdev(values)

    def drop(baseline_seeds: int, new_seeds: int) -> float:
        return planned_detectable_drop(sd, baseline_seeds, new_seeds, a, family)

    return SeedPlan(case_id, n, sd, drop(n, 1), drop(n, 3),
                    _smallest(range(2, MAX_SEEDS + 1), lambda b: drop(b, 1) <= target),
                    _smallest(range(1, MAX_SEEDS + 1), lambda m: drop(n, m) <= target))


def plans(cases: dict[str, BaselineEntry], thresholds: dict[str, AccuracyThresholds], target: float,
          default: AccuracyThresholds = AccuracyThresholds()) -> list[SeedPlan]:
    family = len(cases)
    return [plan(case_id, entry, thresholds.get(case_id, default), target, family)
            for case_id, entry in sorted(cases.items())]

"""The accuracy test's own false-alarm rate and power, checked by simulation against independent
references (the t distribution's nominal level, a Monte-Carlo power estimate), and the seed plan."""
from __future__ import annotations

import math
import statistics

import numpy as np
import pytest
from test_compare import baseline_of, summary

from sftbench.regression.accuracy import planned_detectable_drop
from sftbench.regression.checks import MetricCheck, Status, Verdict
from sftbench.regression.compare import check
from sftbench.regression.gate import suspicious
from sftbench.regression.planning import plan
from sftbench.schema import AccuracyThresholds, Thresholds

DRAWS = 2000


def regressed(base: np.ndarray, new: np.ndarray, t: Thresholds, cases: int = 1) -> bool:
    """One case judged alone (cases=1), or as the first of `cases` identical unchanged cases (Holm)."""
    current = {f"c{i}": summary(f"c{i}", acc=tuple(new) if i == 0 else tuple(base[:len(new)]), runs=[])
               for i in range(cases)}
    baseline = baseline_of(*(summary(f"c{i}", acc=tuple(base), runs=[]) for i in range(cases)))
    verdicts = check(current, baseline, {c: t for c in current})
    return verdicts[0].check_for("accuracy").status is Status.REGRESSED


def binomial_band(rate: float) -> float:
    return 4 * math.sqrt(rate * (1 - rate) / DRAWS)  # four standard errors: this test fails by chance ~1e-4


def test_a_new_seed_from_the_baseline_distribution_regresses_at_the_nominal_rate():
    rng = np.random.default_rng(7)
    t = Thresholds(accuracy=AccuracyThresholds(abs_tol=0.0, alpha=0.05))
    alarms = sum(regressed(rng.normal(0.9, 0.01, 10), rng.normal(0.9, 0.01, 1), t) for _ in range(DRAWS))
    assert abs(alarms / DRAWS - 0.05) < binomial_band(0.05)


def test_the_stated_detectable_drop_is_caught_with_the_stated_power():
    rng = np.random.default_rng(8)
    a = AccuracyThresholds(abs_tol=0.005, alpha=0.05, power=0.8)
    sd, n = 0.01, 10
    limit = planned_detectable_drop(sd, n, 1, a)
    assert 0.027 < limit < 0.034  # about (t(0.95, 9) + 0.88) x 1.05 sd, above the floor's own 1.4 pp
    hits = sum(regressed(rng.normal(0.9, sd, n), rng.normal(0.9 - limit, sd, 1), Thresholds(accuracy=a))
               for _ in range(DRAWS))
    assert abs(hits / DRAWS - 0.8) < binomial_band(0.8)
    # half the limit is caught far less often: the statement is a threshold, not a formality
    half = sum(regressed(rng.normal(0.9, sd, n), rng.normal(0.9 - limit / 2, sd, 1), Thresholds(accuracy=a))
               for _ in range(DRAWS // 4))
    assert half / (DRAWS // 4) < 0.45


def test_holm_keeps_the_run_level_rate_when_cases_multiply():
    rng = np.random.default_rng(9)
    t = Thresholds(accuracy=AccuracyThresholds(abs_tol=0.0, alpha=0.05))
    # the first of four cases, the other three unchanged (p about 0.5): its rate is about alpha / 4
    alarms = sum(regressed(rng.normal(0.9, 0.01, 10), rng.normal(0.9, 0.01, 1), t, cases=4)
                 for _ in range(DRAWS // 2))
    assert alarms / (DRAWS // 2) < 0.0125 + 4 * math.sqrt(0.0125 * 0.9875 / (DRAWS // 2))


def test_the_seed_plan_names_the_seeds_a_target_needs():
    a = AccuracyThresholds(abs_tol=0.005)
    entry = baseline_of(summary(acc=(0.90, 0.91, 0.89, 0.905, 0.895), runs=[])).cases["c"]
    p = plan("c", entry, a, target=0.03, family=4)
    assert p.seed_sd == pytest.approx(statistics.stdev([0.90, 0.91, 0.89, 0.905, 0.895]))
    assert p.detectable_one == pytest.approx(planned_detectable_drop(p.seed_sd, 5, 1, a, 4))
    assert p.detectable_three < p.detectable_one
    more = p.baseline_seeds_for_target
    assert more is not None and more > 5
    assert planned_detectable_drop(p.seed_sd, more, 1, a, 4) <= 0.03 < planned_detectable_drop(p.seed_sd, more - 1, 1, a, 4)
    # a spread so wide that one new seed's own noise is beyond any baseline: more seeds per check
    wide = plan("c", baseline_of(summary(acc=(0.80, 0.90, 0.85, 0.95, 0.75), runs=[])).cases["c"], a, 0.03, 4)
    assert wide.baseline_seeds_for_target is None and wide.new_seeds_for_target is None
    blind = plan("c", baseline_of(summary(acc=(0.9,), runs=[])).cases["c"], a, 0.03, 4)
    assert blind.seed_sd is None and blind.detectable_one is None


def _verdict(status: Status, delta: float, detectable: float) -> Verdict:
    acc = MetricCheck("accuracy", 0.9, 0.9 + delta, status, "", 0.01, detectable_drop=detectable)
    return Verdict("c", status, "", [acc])


def test_confirmation_picks_regressions_and_drops_beyond_half_the_detectable_drop():
    assert suspicious(_verdict(Status.REGRESSED, -0.05, 0.04))
    assert suspicious(_verdict(Status.NOISE, -0.03, 0.04))  # beyond half of 4 pp
    assert not suspicious(_verdict(Status.NOISE, -0.01, 0.04))
    assert not suspicious(_verdict(Status.PASS, 0.0, 0.04))


def test_holm_matches_statsmodels():
    from statsmodels.stats.multitest import multipletests

    from sftbench.regression.stats import holm

    rng = np.random.default_rng(3)
    for _ in range(50):
        p = list(rng.random(6) ** 3)
        assert np.allclose(holm(p), multipletests(p, 0.05, "holm")[1])

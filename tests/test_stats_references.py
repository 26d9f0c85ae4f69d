"""The verdicts' statistics against independent references: statsmodels, scipy, closed forms and
simulation, never against sftbench's own earlier output."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats
from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar

from sftbench.regression import stats


def _pairs(losses: int, gains: int, agree: int) -> list[tuple[np.ndarray, np.ndarray]]:
    base = np.array([True] * losses + [False] * gains + [True] * agree)
    cur = np.array([False] * losses + [True] * gains + [True] * agree)
    return [(base, cur)]


@pytest.mark.parametrize("losses, gains", [(9, 2), (3, 3), (0, 5), (30, 12), (1, 0)])
def test_exact_mcnemar_is_half_of_statsmodels_two_sided_when_b_is_worse(losses, gains):
    ours = stats.mcnemar(_pairs(losses, gains, 50), 0.05)
    table = [[50, losses], [gains, 0]]  # rows: baseline right/wrong, columns: current right/wrong
    two_sided = sm_mcnemar(table, exact=True).pvalue
    assert (ours.losses, ours.gains) == (losses, gains)
    if losses > gains:  # the one-sided tail is half the symmetric two-sided one
        assert ours.p_value == pytest.approx(two_sided / 2)
    assert ours.p_value == pytest.approx(scipy_stats.binom.sf(losses - 1, losses + gains, 0.5))


def test_mcnemar_detectable_drop_is_the_first_loss_count_the_exact_test_rejects():
    discordant, examples, alpha = 40, 1000, 0.05
    drop = stats.mcnemar_detectable_drop(discordant, examples, alpha)
    losses = round((drop * examples + discordant) / 2)  # drop = (losses - gains) / examples
    p = lambda k: scipy_stats.binom.sf(k - 1, discordant, 0.5)  # noqa: E731  P(X >= k)
    assert p(losses) <= alpha < p(losses - 1)
    assert stats.mcnemar_detectable_drop(0, examples, alpha) == math.inf


def test_welch_matches_scipy_and_its_zero_variance_edge():
    base, cur = [0.91, 0.93, 0.92, 0.90], [0.88, 0.87, 0.90]
    ours = stats.welch(base, cur, 0.05)
    assert ours.p_value == pytest.approx(scipy_stats.ttest_ind(base, cur, equal_var=False, alternative="greater").pvalue)
    assert stats.welch([0.9, 0.9], [0.8, 0.8], 0.05).p_value == 0.0  # no spread, worse: certain
    assert stats.welch([0.9, 0.9], [0.95, 0.95], 0.05).p_value == 1.0


def test_two_proportions_matches_the_closed_form_z_and_its_degenerate_edges():
    ours = stats.two_proportions(0.90, 0.86, 1000, 1000, 0.05)
    pooled = (900 + 860) / 2000
    z = (0.86 - 0.90) / math.sqrt(pooled * (1 - pooled) * 2 / 1000)
    assert ours.p_value == pytest.approx(scipy_stats.norm.cdf(z))
    assert ours.detectable_drop == pytest.approx(1.6448536 * math.sqrt(pooled * (1 - pooled) * 2 / 1000))
    for same in (1.0, 0.0):  # every answer right, or every answer wrong, on both sides
        edge = stats.two_proportions(same, same, 500, 500, 0.05)
        assert edge.p_value == 1.0 and edge.detectable_drop == math.inf


def test_seed_t_test_is_the_pooled_two_sample_t_test():
    base, cur = [0.912, 0.905, 0.921, 0.915, 0.909], [0.893, 0.901]
    ours = stats.seed_t_test(base, cur, 0.05, 0.8)
    reference = scipy_stats.ttest_ind(base, cur, equal_var=True, alternative="greater")
    assert ours is not None and ours.p_value == pytest.approx(reference.pvalue)
    assert ours.dof == len(base) + len(cur) - 2
    assert stats.seed_t_test([0.9], [0.8], 0.05, 0.8) is None  # no spread learnt on either side
    flat = stats.seed_t_test([0.9, 0.9], [0.85], 0.05, 0.8)
    assert flat is not None and flat.p_value == 0.0 and flat.se == 0.0


def test_the_detectable_drop_is_caught_with_its_power_in_a_simulation_of_the_test():
    sd, n_base, alpha, power = 0.01, 10, 0.0125, 0.8
    se = stats.seed_se(sd, n_base, 1)
    drop = stats.t_detectable_drop(se, n_base - 1, alpha, power)
    rng = np.random.default_rng(0)
    caught = 0
    for _ in range(2000):
        base = rng.normal(0.9, sd, n_base)
        result = stats.seed_t_test(list(base), [0.9 - drop + rng.normal(0, sd)], alpha, power)
        caught += result is not None and result.p_value < alpha
    assert abs(caught / 2000 - power) < 0.03  # 2,000 draws: the binomial sd is 0.9 points


def test_holm_matches_the_textbook_step_down_on_a_hand_worked_family():
    # p sorted 0.01, 0.02, 0.03, 0.5 over m = 4: 4 x 0.01, max(0.04, 3 x 0.02), max(0.06, 2 x 0.03), 0.5
    assert stats.holm([0.03, 0.5, 0.01, 0.02]) == pytest.approx([0.06, 0.5, 0.04, 0.06])


def _bits(correct: list[bool], digest: str = "d"):
    from sftbench.results.record import PerExample

    return PerExample.from_bools(np.array(correct), digest)


def test_paired_bits_match_seeds_by_number_then_by_order_and_only_on_the_same_test_split():
    from sftbench.regression.accuracy import paired_bits
    from sftbench.regression.baselines import AccuracyStats, BaselineEntry
    from sftbench.regression.summary import CaseSummary

    b0, b1 = [True, True, False, False], [True, False, True, False]
    c5, c0 = [False, True, True, True], [True, True, True, True]
    entry = BaselineEntry(spec_hash="h", accuracy=AccuracyStats(values={"0": 0.5, "1": 0.5}, mean=0.5, std=0.0, n=2),
                          per_example={"0": _bits(b0), "1": _bits(b1)})

    def pairs(current: dict[int, object]):
        got = paired_bits(entry, CaseSummary("c", "h", "cpu", per_example=current))
        return [(b.tolist(), c.tolist()) for b, c in got]

    assert pairs({0: _bits(c0), 5: _bits(c5)}) == [(b0, c0)]  # seed 0 on both sides: only that pair
    assert pairs({5: _bits(c5), 7: _bits(c0)}) == [(b0, c5), (b1, c0)]  # no common seed: in order
    assert pairs({0: _bits(c0, digest="other")}) == []  # another test split never pairs

"""Each transferability score against an independent computation or a known limit."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.stats import weightedtau

from sftbench.selection import scores
from sftbench.selection.agreement import agreement


def brute_force_evidence(f, y):
    """max over (alpha, beta) of log p(y | F, alpha, beta) / N, by direct linear algebra and Nelder-Mead."""
    n, d = f.shape

    def negative(log_params):
        alpha, beta = np.exp(log_params)
        a = alpha * np.eye(d) + beta * f.T @ f
        m = beta * np.linalg.solve(a, f.T @ y)
        evidence = (d / 2 * np.log(alpha) + n / 2 * np.log(beta) - beta / 2 * np.sum((y - f @ m) ** 2)
                    - alpha / 2 * m @ m - np.linalg.slogdet(a)[1] / 2 - n / 2 * np.log(2 * np.pi))
        return -evidence / n

    starts = [(0.0, 0.0), (3.0, 1.0), (-3.0, 3.0), (5.0, -1.0)]
    return -min(minimize(negative, s, method="Nelder-Mead", options={"xatol": 1e-8, "fatol": 1e-10,
                                                                      "maxiter": 4000}).fun for s in starts)


@pytest.mark.parametrize("n, d", [(120, 8), (40, 60)])  # more samples than features, and fewer
def test_logme_matches_a_brute_force_evidence_maximisation(n, d):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, n)
    features = rng.normal(size=(n, d)) + 1.5 * np.eye(3, d)[labels]
    expected = np.mean([brute_force_evidence(features, (labels == c).astype(float)) for c in range(3)])
    assert scores.logme(features, labels) == pytest.approx(expected, abs=1e-3)


def test_logme_is_higher_for_separable_features_than_for_random_ones():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 4, 400)
    separable = rng.normal(size=(400, 16)) + 4 * np.eye(4, 16)[labels]
    assert scores.logme(separable, labels) > scores.logme(rng.normal(size=(400, 16)), labels)


def test_leep_is_zero_for_a_perfect_mapping_and_log_one_over_c_for_random_predictions():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 5, 3000)
    perfect = np.eye(30)[labels * 6]  # each target class has its own source class, predicted with certainty
    assert scores.leep(perfect, labels) == pytest.approx(0.0, abs=1e-6)
    random = rng.dirichlet(np.ones(30), 3000)
    assert scores.leep(random, labels) == pytest.approx(np.log(1 / 5), abs=0.01)


def test_nce_is_zero_for_a_perfect_mapping_and_minus_log_c_when_uninformative():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 4, 4000)
    assert scores.nce(np.eye(12)[labels * 3], labels) == pytest.approx(0.0, abs=1e-9)
    assert scores.nce(rng.dirichlet(np.ones(12), 4000), labels) == pytest.approx(-np.log(4), abs=0.01)


def test_h_score_is_near_zero_on_random_features_and_grows_with_separation():
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 5, 5000)
    assert abs(scores.h_score(rng.normal(size=(5000, 16)), labels)) < 0.1
    assert scores.h_score(rng.normal(size=(5000, 16)) + 3 * np.eye(5, 16)[labels], labels) > 1.0
    wide = rng.normal(size=(50, 200))  # features outnumber samples: the shrinkage keeps it finite
    assert np.isfinite(scores.h_score(wide, rng.integers(0, 3, 50)))


def test_gbc_stays_in_its_range_and_approaches_zero_for_separated_classes():
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 4, 800)
    overlapping = scores.gbc(rng.normal(size=(800, 8)), labels)
    separated = scores.gbc(rng.normal(size=(800, 8)) + 50 * np.eye(4, 8)[labels], labels)
    assert -4 * 3 < overlapping <= 0 and overlapping < -10  # identical classes: each coefficient near 1
    assert separated == pytest.approx(0.0, abs=1e-6)


def test_knn_accuracy_on_clusters_and_on_noise():
    rng = np.random.default_rng(6)
    train_y, val_y = rng.integers(0, 3, 300), rng.integers(0, 3, 100)
    centres = 10 * np.eye(3, 5)
    assert scores.knn_accuracy(centres[train_y] + rng.normal(size=(300, 5)), train_y,
                               centres[val_y] + rng.normal(size=(100, 5)), val_y) == 1.0
    assert scores.knn_accuracy(rng.normal(size=(300, 5)), train_y, rng.normal(size=(100, 5)), val_y) < 0.55


def test_weighted_tau_reproduces_tllib_logme_on_cifar10():
    # thuml/Transfer-Learning-Library examples/model_selection/README.md, CIFAR10 table: 10 ImageNet models
    finetuned = [96.2, 97.5, 96.8, 97.7, 97.9, 97.2, 97.4, 97.4, 95.7, 96.8]
    logme = [0.293, 0.349, 0.388, 0.463, 0.469, 0.302, 0.343, 0.369, 0.291, 0.304]
    assert weightedtau(logme, finetuned).statistic == pytest.approx(0.785, abs=5e-4)
    # and agreement(), the code users run, reports that same published tau, pick and regret
    names = [f"m{i}" for i in range(10)]
    result = agreement(dict(zip(names, logme)), dict(zip(names, finetuned)))
    assert result is not None and result.candidates == 10
    assert result.tau == pytest.approx(0.785, abs=5e-4)
    assert (result.pick, result.best) == ("m4", "m4") and result.top1_matches and result.regret_pp == 0.0
    assert result.tau_low <= result.tau <= result.tau_high
    assert result.pearson == pytest.approx(np.corrcoef(logme, finetuned)[0, 1])

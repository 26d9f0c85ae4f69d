"""`sftbench ab`: paired ratios and their intervals, McNemar between the sides, the plan's
interleaving, and one end-to-end comparison against a wrapper that slows torch's backward pass."""
from __future__ import annotations

import json
import math
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import fake_record

from sftbench.engine.ab import AbPlan
from sftbench.regression.ab import compare_ab, judge_speeds, measure_ratio, ratio_interval, ratio_p_value
from sftbench.regression.checks import Status
from sftbench.results.record import PerExample

SLOWDOWN = Path(__file__).resolve().parents[1] / "benchmarks" / "verdicts" / "slowdown"


def _rec(side, round_index, train, case_id="c", seed=0, correct=None):
    bits = PerExample.from_bools(np.ones(200, bool) if correct is None else correct, "d")
    return fake_record(case_id=case_id, run_key=f"{case_id}-seed{seed}", seed=seed, run_id=f"ab-{side}-round{round_index}",
                       spec_hash="h", status="ok", metrics={"top1": float(bits.bools().mean())}, per_example=bits.model_dump(),
                       env={"hardware_key": "cpu", "torch": "2.14.1" if side == "A" else "2.15.0"},
                       throughput={"train_samples_per_s": train, "eval_samples_per_s": 2 * train, "train_path": "images"})


def _sides(a_speeds, b_speeds, b_correct=None):
    a = {i: [_rec("A", i, s)] for i, s in enumerate(a_speeds)}
    b = {i: [_rec("B", i, s, correct=b_correct)] for i, s in enumerate(b_speeds)}
    return a, b


def test_ratio_interval_is_a_t_interval_on_log_ratios():
    ratio, low, high = ratio_interval([0.9, 1.0, 1.1], 0.95)
    logs = np.log([0.9, 1.0, 1.1])
    half = 4.302653 * logs.std(ddof=1) / math.sqrt(3)  # t(0.975, 2), an independent reference value
    assert ratio == pytest.approx(math.exp(logs.mean()))
    assert (low, high) == pytest.approx((math.exp(logs.mean() - half), math.exp(logs.mean() + half)))
    assert ratio_interval([0.8], 0.95)[1:] == (None, None)


def test_ratio_p_value_is_the_paired_t_test_on_log_ratios():
    from scipy import stats
    ratios = [0.8, 0.9, 0.85, 0.95]
    assert ratio_p_value(ratios) == pytest.approx(stats.ttest_1samp(np.log(ratios), 0.0).pvalue)
    assert ratio_p_value([0.8]) is None and ratio_p_value([1.0, 1.0]) == 1.0 and ratio_p_value([0.9, 0.9]) == 0.0


def _simulated_runs(draws, cases, rounds, sd, slow_case_ratio=1.0, seed=0):
    """Verdicts of `draws` simulated comparisons: 2 metrics per case, lognormal round noise; case 0
    optionally slower on B by `slow_case_ratio`."""
    rng = np.random.default_rng(seed)
    for _ in range(draws):
        ratios = []
        for case in range(cases):
            shift = math.log(slow_case_ratio) if case == 0 else 0.0
            ratios += [measure_ratio(m, list(np.exp(shift + rng.normal(0, sd, rounds))), 0.95) for m in ("train", "eval")]
        judge_speeds(ratios, 0.05, 0.05)
        yield ratios


def test_holm_keeps_a_many_case_a_a_comparison_below_five_percent_false_alarms():
    # 8 cases x 2 metrics, per-round log-ratio sd 15 % (the train B/A spread over the rounds of a
    # measured same-interpreter comparison on a 2-core VM): unadjusted 95 % intervals would flag
    # about a third of these A/A comparisons
    runs = list(_simulated_runs(500, 8, 5, 0.15))
    family = np.mean([any(r.status is Status.REGRESSED for r in rs) for rs in runs])
    unadjusted = np.mean([any(r.high < 1 and r.ratio < 0.95 for r in rs) for rs in runs])
    assert family <= 0.05 and unadjusted > 0.15


def test_a_twice_slower_case_among_eight_is_still_caught_in_five_rounds():
    runs = list(_simulated_runs(200, 8, 5, 0.15, slow_case_ratio=0.5, seed=1))
    caught = np.mean([rs[0].status is Status.REGRESSED for rs in runs])
    assert caught >= 0.9


def test_same_speed_on_both_sides_passes_with_an_interval_around_one():
    [case] = compare_ab(*_sides([100, 102, 98, 101], [101, 99, 100, 102]))
    train = case.speeds[0]
    assert case.status is Status.PASS and train.low < 1.0 < train.high and train.rounds == 4


def test_a_steady_fifteen_percent_slowdown_is_caught_and_a_noisy_one_is_not():
    [slow] = compare_ab(*_sides([100, 103, 97, 101, 99], [85, 88, 83, 86, 84]))
    assert slow.status is Status.REGRESSED and slow.speeds[0].high < 1.0
    assert slow.speeds[0].ratio == pytest.approx(0.85, abs=0.01)
    [noisy] = compare_ab(*_sides([100, 60, 140], [85, 140, 60]))
    assert noisy.speeds[0].status is not Status.REGRESSED


def test_a_slowdown_within_the_tolerance_is_noise_even_when_significant():
    [case] = compare_ab(*_sides([100, 100, 100], [97, 97.1, 96.9]), tolerance=0.05)
    assert case.speeds[0].high < 1.0 and case.speeds[0].status is Status.PASS


def test_accuracy_is_paired_example_by_example():
    worse = np.ones(200, bool)
    worse[:30] = False  # B gets 30 examples wrong that A gets right
    [case] = compare_ab(*_sides([100, 100], [100, 100], b_correct=worse))
    acc = case.accuracy
    assert (acc.losses, acc.gains, acc.status, case.status) == (30, 0, Status.REGRESSED, Status.REGRESSED)
    assert acc.p_value == pytest.approx(0.5 ** 30)  # exact binomial: 30 losses of 30 discordant pairs
    assert acc.a_top1 == 1.0 and acc.b_top1 == pytest.approx(0.85)


def test_rounds_alternate_the_order_and_later_rounds_skip_preflight(tmp_path):
    plan = AbPlan(tmp_path / "s.yaml", "s", {"A": "pa", "B": "pb"}, 3, tmp_path, threads=2, seeds="0,1")
    orders = [plan.order(i) for i in range(40)]
    assert all(orders[i + 1] == orders[i][::-1] for i in range(0, 40, 2))  # each pair balanced
    openers = [orders[i][0] for i in range(0, 40, 2)]
    assert 5 <= openers.count("A") <= 15  # drawn, not in step with the round number
    assert orders == [plan.order(i) for i in range(40)]  # and reproducible
    first, later = plan.command("B", 0), plan.command("B", 1)
    assert first[:4] == ["pb", "-m", "sftbench", "run"] and "--no-preflight" not in first
    assert later[-1] == "--no-preflight" and later[later.index("--threads") + 1] == "2"
    assert later[later.index("--run-id") + 1] == "ab-B-round1"


def _wrapper(tmp_path: Path, backward: float) -> Path:
    """An interpreter wrapper as users write them: set up the environment, then exec Python."""
    script = tmp_path / f"python-slow{backward:g}"
    script.write_text(f"#!/bin/sh\nexport PYTHONPATH={SLOWDOWN}${{PYTHONPATH:+:$PYTHONPATH}}\n"
                      f"export SLOWDOWN_BACKWARD={backward}\nexec {sys.executable} \"$@\"\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script


@pytest.mark.slow
def test_ab_end_to_end_catches_a_twice_slower_backward_pass(tmp_path, write_suite, tiny_suite):
    tiny_suite["matrix"]["strategies"] = ["full"]
    tiny_suite["defaults"]["epochs"] = 3
    suite = write_suite(tiny_suite)
    out = tmp_path / "ab.json"
    done = subprocess.run([sys.executable, "-m", "sftbench", "ab", "--suite", str(suite), "--a", sys.executable,
                           "--b", str(_wrapper(tmp_path, 3.0)), "--rounds", "3", "--threads", "1", "--json", str(out)],
                          capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})
    assert done.returncode == 1, done.stdout + done.stderr
    [case] = json.loads(out.read_text())["cases"]
    train = next(s for s in case["speeds"] if s["metric"] == "train_throughput")
    assert train["status"] == "REGRESSED" and train["high"] < 1.0 and train["ratio"] < 0.7
    assert case["accuracy"]["losses"] == case["accuracy"]["gains"] == 0  # a slower backward changes no result
    assert "B vs A over 3 interleaved round(s)" in done.stdout


def test_ab_refuses_an_interpreter_that_cannot_import_sftbench(tmp_path, write_suite, tiny_suite):
    broken = tmp_path / "nopython"
    broken.write_text("#!/bin/sh\nexit 7\n")
    broken.chmod(0o755)
    done = subprocess.run([sys.executable, "-m", "sftbench", "ab", "--suite", str(write_suite(tiny_suite)), "--a",
                           sys.executable, "--b", str(broken)], capture_output=True, text=True)
    assert done.returncode == 2 and "--b" in done.stderr and "cannot import sftbench" in done.stderr
    assert "Traceback" not in done.stderr

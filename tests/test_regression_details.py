"""The regression layer's boundaries and exact sentences, one behaviour per test: the cases mutation
testing (benchmarks/mutation/run.sh) found that no other test pinned down. Expected values are worked
by hand or come from scipy, never from sftbench's own earlier output."""
from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as scipy_stats

from conftest import fake_record
from sftbench.errors import ResultsFormatError, SftbenchError
from sftbench.regression import stats
from sftbench.regression.accuracy import planned_detectable_drop
from sftbench.regression.baselines import AccuracyStats, BaselineEntry
from sftbench.regression.checks import MetricCheck, Status, Verdict
from sftbench.regression.compare import _combine
from sftbench.regression.gate import exit_code, hardware_of, pick_baseline, suspicious
from sftbench.regression.integrity import check_baseline_entry, check_record
from sftbench.regression.planning import MAX_SEEDS, plan, plans
from sftbench.regression.summary import summarise
from sftbench.results.record import PerExample
from sftbench.schema import AccuracyThresholds

# --- integrity: top-1 against its own bits -------------------------------------------------------------


def _bits(right: int, n: int) -> PerExample:
    return PerExample.from_bools(np.arange(n) < right, "digest")


def _scored(top1: float, bits: PerExample, **changes):
    return fake_record(metrics={"top1": top1}, **changes).model_copy(update={"per_example": bits})


def test_half_an_example_of_rounding_is_allowed_and_anything_more_is_refused_in_one_sentence():
    bits = _bits(4, 8)  # 50 %; half an example is 6.25 pp
    check_record(_scored(0.5625, bits), Path("r.jsonl"))  # exactly half an example off: rounding
    expected = ("r.jsonl: case 'test_efficientnet-random-synthetic-linear_probe' seed 0 states top-1 56.26 % but "
                "its per-example results give 50.00 %; the file was edited after the run: restore it or re-run the case")
    with pytest.raises(ResultsFormatError, match=f"^{re.escape(expected)}$"):
        check_record(_scored(0.5626, bits), Path("r.jsonl"))
    with pytest.raises(ResultsFormatError, match="states top-1 60.00 %"):
        check_record(_scored(0.6, bits), Path("r.jsonl"))  # 1.6 examples off


def test_records_without_bits_metrics_or_success_are_not_checked():
    check_record(_scored(0.9, _bits(0, 0)), Path("r.jsonl"))  # no examples scored
    check_record(_scored(0.9, None), Path("r.jsonl"))
    failed = _scored(0.9, _bits(1, 8), status="failed", error={"type": "X", "message": "m", "phase": "train"})
    check_record(failed, Path("r.jsonl"))


def test_a_baseline_seed_that_disagrees_with_its_bits_is_refused_naming_it():
    expected = ("b.json: case 'c' seed 3 states top-1 90.00 % but its per-example results give 50.00 %; the file "
                "was edited after the run: restore it or re-run the case")
    with pytest.raises(ResultsFormatError, match=f"^{re.escape(expected)}$"):
        check_baseline_entry("c", {"1": 0.5, "3": 0.9}, {"1": _bits(4, 8), "3": _bits(4, 8)}, Path("b.json"))
    check_baseline_entry("c", {"1": 0.5, "3": 0.9}, {"1": _bits(4, 8)}, Path("b.json"))  # seed 3 has no bits


# --- gate ------------------------------------------------------------------------------------------------


def test_mixed_hardware_is_refused_naming_every_key():
    records = [fake_record(env={"hardware_key": k}) for k in ("cpu-b-2t", "cpu-a-2t", "cpu-c-2t")]
    expected = ("the results mix hardware keys ['cpu-a-2t', 'cpu-b-2t', 'cpu-c-2t']; check one hardware's results "
                "at a time")
    with pytest.raises(SftbenchError, match=f"^{re.escape(expected)}$"):
        hardware_of(records)
    assert hardware_of(records[:1]) == "cpu-b-2t"


def test_a_cpu_run_prefers_any_cpu_baseline_over_the_first_file(tmp_path):
    for key in ("cuda-a100", "cpu-zz-4t"):  # sorted, the GPU's file comes first
        path = tmp_path / "s" / f"{key}.json"
        path.parent.mkdir(exist_ok=True)
        path.write_text(f'{{"schema_version": 3, "suite": "s", "hardware_key": "{key}", "cases": {{}}}}')
    assert pick_baseline(None, tmp_path, "s", "cpu-aa-2t").hardware_key == "cpu-zz-4t"
    assert pick_baseline(None, tmp_path, "s", "mps").hardware_key == "cpu-zz-4t"  # no MPS file: the first


def _noise(delta, drop, status=Status.NOISE):
    checks = [] if delta is None else [MetricCheck("accuracy", 0.5, 0.5 + delta, status, "r", detectable_drop=drop)]
    return Verdict("c", status, "r", checks)


def test_suspicious_means_beyond_half_the_detectable_drop_and_nothing_else():
    assert not suspicious(_noise(-0.125, 0.25))  # exactly half (binary fractions: no rounding): not beyond
    assert suspicious(_noise(-0.126, 0.25))
    assert not suspicious(_noise(-0.1, 0.25))  # beyond a third, within half
    assert not suspicious(_noise(-0.2, 0.25, Status.PASS))  # only NOISE verdicts are re-run
    assert not suspicious(_noise(None, None))  # no accuracy check
    assert not suspicious(_noise(-0.2, None))  # no detectable drop stated


def test_strict_alone_does_not_fail_a_passing_run():
    assert exit_code([Verdict("c", Status.PASS, "r")], strict=True) == 0
    assert exit_code([Verdict("c", Status.INCOMPARABLE, "r")], strict=True) == 1


# --- seed planning ---------------------------------------------------------------------------------------

A = AccuracyThresholds()


def _entry(values):
    return BaselineEntry(spec_hash="h", accuracy=AccuracyStats(values={str(i): v for i, v in enumerate(values)},
                                                               n=len(values)))


def test_one_seed_plans_nothing_and_two_seeds_plan():
    one = plan("c", _entry([0.9]), A, 0.03, 1)
    assert (one.case_id, one.seeds, one.seed_sd, one.detectable_one, one.baseline_seeds_for_target) == ("c", 1, None,
                                                                                                       None, None)
    two = plan("c", _entry([0.90, 0.92]), A, 0.03, 1)
    assert (two.case_id, two.seeds) == ("c", 2) and two.seed_sd == pytest.approx(math.sqrt(0.0002))


def test_seeds_for_a_target_are_the_first_counts_that_reach_it_exactly():
    values = [0.90, 0.91, 0.92, 0.905, 0.915, 0.91]
    sd, n = float(np.std(values, ddof=1)), len(values)

    def drop(baseline, new, family=2):
        return planned_detectable_drop(sd, baseline, new, A, family)

    assert plan("c", _entry(values), A, drop(9, 1), 2).baseline_seeds_for_target == 9  # reached at equality
    assert plan("c", _entry(values), A, drop(2, 1), 2).baseline_seeds_for_target == 2
    assert plan("c", _entry(values), A, drop(MAX_SEEDS, 1), 2).baseline_seeds_for_target == MAX_SEEDS
    assert plan("c", _entry(values), A, drop(MAX_SEEDS + 1, 1), 2).baseline_seeds_for_target is None
    assert plan("c", _entry(values), A, drop(n, 1), 2).new_seeds_for_target == 1
    assert plan("c", _entry(values), A, drop(n, 4), 2).new_seeds_for_target == 4
    assert plan("c", _entry(values), A, drop(n, MAX_SEEDS), 2).new_seeds_for_target == MAX_SEEDS
    assert plan("c", _entry(values), A, drop(n, MAX_SEEDS + 1), 2).new_seeds_for_target is None
    made = plan("c", _entry(values), A, 0.03, 2)
    assert (made.detectable_one, made.detectable_three) == (pytest.approx(drop(n, 1)), pytest.approx(drop(n, 3)))


def test_plans_hold_every_case_to_the_whole_suites_family_in_case_order():
    strict = AccuracyThresholds(alpha=0.01)
    cases = {"b": _entry([0.9, 0.92, 0.91]), "a": _entry([0.8, 0.83, 0.82])}
    made = plans(cases, {"b": strict}, 0.03)
    assert [p.case_id for p in made] == ["a", "b"]
    assert made[0].detectable_one == pytest.approx(plan("a", cases["a"], A, 0.03, 2).detectable_one)
    assert made[1].detectable_one == pytest.approx(plan("b", cases["b"], strict, 0.03, 2).detectable_one)
    assert made[0].detectable_one != pytest.approx(plan("a", cases["a"], A, 0.03, 1).detectable_one)


# --- statistics against scipy and closed forms -----------------------------------------------------------


def test_welchs_detectable_drop_is_the_drop_scipy_calls_significant_at_alpha():
    baseline, current = [0.90, 0.92, 0.91, 0.93], [0.89, 0.92, 0.90]
    result = stats.welch(baseline, current, 0.05)
    assert result.name == "welch"
    assert result.p_value == pytest.approx(scipy_stats.ttest_ind(baseline, current, equal_var=False,
                                                                 alternative="greater").pvalue)
    shift = result.detectable_drop - (np.mean(baseline) - np.mean(current))  # move current down to that drop
    at_limit = scipy_stats.ttest_ind(baseline, [c - shift for c in current], equal_var=False, alternative="greater")
    assert at_limit.pvalue == pytest.approx(0.05, rel=1e-6)


def test_welch_without_spread_is_decided_by_the_means_alone():
    assert stats.welch([0.9, 0.9], [0.8, 0.8], 0.05) == stats.TestResult("welch", 0.0, 0.0)
    assert stats.welch([0.9, 0.9], [0.9, 0.9], 0.05) == stats.TestResult("welch", 1.0, 0.0)  # equal: no drop


def test_two_proportions_against_the_normal_closed_form():
    result = stats.two_proportions(0.90, 0.85, 1000, 1000, 0.05)
    pooled = 0.875
    se = math.sqrt(pooled * (1 - pooled) * (2 / 1000))
    assert result.name == "two-proportion"
    assert result.p_value == pytest.approx(scipy_stats.norm.sf(0.05 / se), rel=1e-6)
    assert result.detectable_drop == pytest.approx(scipy_stats.norm.isf(0.05) * se)
    for every in (1.0, 0.0):  # all right (or all wrong) on both sides: no variance to test with
        assert stats.two_proportions(every, every, 100, 100, 0.05) == stats.TestResult("two-proportion", 1.0, math.inf)


def test_mcnemar_states_its_detectable_drop_over_every_example_and_p_one_without_discordance():
    pairs = [(np.array([True] * 9 + [False] * 2 + [True] * 49), np.array([False] * 9 + [True] * 2 + [True] * 49))]
    result = stats.mcnemar(pairs, 0.05)
    assert result.name == "mcnemar" and (result.losses, result.gains) == (9, 2)
    threshold = int(scipy_stats.binom.isf(0.05, 11, 0.5)) + 1  # 9: P(X >= 9 | 11) = 0.033
    assert result.detectable_drop == pytest.approx((2 * threshold - 11) / 60)
    same = [(np.array([True, False]), np.array([True, False]))]
    assert stats.mcnemar(same, 0.05) == stats.TestResult("mcnemar", 1.0, math.inf, 0, 0)


def test_mcnemars_detectable_drop_at_the_edges_of_the_exact_test():
    assert stats.mcnemar_detectable_drop(5, 100, 0.05) == pytest.approx(0.05)  # all 5 lost: p = 1/32, rejects
    assert stats.mcnemar_detectable_drop(3, 100, 0.05) == math.inf  # even 3 of 3 lost: p = 1/8
    assert stats.mcnemar_detectable_drop(5, 0, 0.05) == math.inf


# --- how a verdict's reason is put together --------------------------------------------------------------


def _check(metric, status, reason):
    return MetricCheck(metric, 1.0, 1.0, status, reason)


def test_a_verdicts_reason_names_the_deciding_checks_exactly():
    assert _combine([_check("accuracy", Status.REGRESSED, "a"), _check("train", Status.REGRESSED, "t")]) == (
        Status.REGRESSED, "a; t")
    assert _combine([_check("accuracy", Status.PASS, "acc ok")]) == (Status.PASS, "acc ok")
    assert _combine([]) == (Status.PASS, "nothing to compare")
    skipped_accuracy = [_check("accuracy", Status.SKIPPED, "no accuracy"), _check("train_samples_per_s", Status.PASS, "")]
    assert _combine(skipped_accuracy) == (Status.PASS, "train within tolerance")
    speed_unjudged = [_check("accuracy", Status.PASS, "acc ok"), _check("eval_x", Status.MACHINE_DIFFERS, "other box")]
    assert _combine(speed_unjudged) == (Status.PASS, "acc ok; other box")


def test_verdicts_serialise_with_plain_status_strings_and_their_first_stage():
    first = Verdict("c", Status.REGRESSED, "r1", [_check("accuracy", Status.REGRESSED, "a")], 3, 1)
    final = Verdict("c", Status.NOISE, "r2", [_check("accuracy", Status.NOISE, "b")], 3, 4, initial=first)
    data = final.to_dict()
    assert data["status"] == "NOISE" and data["checks"][0]["status"] == "NOISE"
    assert data["initial"]["status"] == "REGRESSED" and data["initial"]["checks"][0]["status"] == "REGRESSED"
    assert (data["case_id"], data["reason"], data["baseline_n"], data["current_n"]) == ("c", "r2", 3, 4)
    assert data["initial"]["initial"] is None and first.to_dict()["initial"] is None


# --- summaries -------------------------------------------------------------------------------------------


def _seed(seed, **changes):
    return fake_record(seed=seed, run_key=f"c-seed{seed}", case_id="c", **changes)


def test_a_failed_seed_is_named_and_the_seeds_after_it_still_count():
    failed = _seed(0, status="failed", metrics=None, error={"type": "RuntimeError", "message": "boom", "phase": "train"})
    ok = [_seed(1, metrics={"top1": 0.5}, throughput={"eval_windows": [1.0, 2.0]}),
          _seed(2, metrics={"top1": 0.7}, throughput={"eval_windows": [3.0]})]
    [s] = summarise([failed, *ok]).values()
    assert s.errors == [f"seed 0: {failed.error_message}"] and s.accuracy == {1: 0.5, 2: 0.7}
    assert s.eval_windows == [1.0, 2.0, 3.0] and s.test_n == 32  # windows of every seed; the test split's size
    assert (s.case_id, s.hardware_key, s.env, s.labels) == ("c", ok[0].hardware_key, failed.env, failed.labels)


def test_a_record_without_throughput_counts_as_failed():
    broken = _seed(0).model_copy(update={"throughput": None})
    [s] = summarise([broken]).values()
    assert s.failed and s.accuracy == {}


def test_the_summary_keeps_the_chosen_point_of_the_keys_chosen_over_only():
    record = _seed(0, spec={"sweep": {"optimizer.lr": 0.01, "epochs": 2},
                            "select": {"metric": "val_top1", "over": ["optimizer.lr"], "group": "c"}})
    assert summarise([record])["c"].sweep_point == {"optimizer.lr": 0.01}
    assert summarise([_seed(0, spec={"sweep": {"optimizer.lr": 0.01}})])["c"].sweep_point == {}


# --- accuracy: the one-seed fallback, split variance, planning ---------------------------------------------


def _summary(values, bits=None, test_n=None):
    from sftbench.regression.summary import CaseSummary

    return CaseSummary("c", "h", "cpu", accuracy=dict(enumerate(values)), per_example=dict(enumerate(bits or [])),
                       test_n=test_n)


def _baseline(values, bits=None, test_n=None):
    return BaselineEntry(spec_hash="h", accuracy=AccuracyStats(values={str(i): v for i, v in enumerate(values)},
                                                               n=len(values)),
                         per_example={str(i): b for i, b in enumerate(bits or [])}, test_n=test_n)


def test_the_fallback_uses_the_test_size_either_side_knows_and_a_baseline_without_bits():
    from sftbench.regression.accuracy import fallback_test

    current = _summary([0.80], bits=[_bits(80, 100)])  # bits, but the baseline has none: nothing to pair
    result = fallback_test(_baseline([0.90], test_n=100), current, 0.05)
    assert result == stats.two_proportions(0.90, 0.80, 100, 100, 0.05)
    assert fallback_test(_baseline([0.90]), _summary([0.80]), 0.05) is None  # no test size anywhere
    nothing_right = fallback_test(_baseline([0.0], test_n=100), _summary([0.0]), 0.05)
    assert nothing_right == stats.TestResult("two-proportion", 1.0, math.inf)


def test_different_test_splits_add_their_sampling_variance_to_the_seed_noise():
    from sftbench.regression.accuracy import accuracy_test

    base_values, new_values = [0.80, 0.82, 0.84], [0.81, 0.83]
    on = lambda digest: [PerExample.from_bools(np.arange(100) < 80, digest)] * 3  # noqa: E731
    same = accuracy_test(_baseline(base_values, on("a")), _summary(new_values, on("a")[:2]), A)
    other = accuracy_test(_baseline(base_values, on("a")), _summary(new_values, on("b")[:2]), A)
    sd = math.sqrt((2 * 0.0004 + 0.0002) / 3)  # pooled over both sides, each around its own mean
    assert same.se == pytest.approx(sd * math.sqrt(1 / 3 + 1 / 2))
    p = np.mean(base_values)
    assert other.se == pytest.approx(math.sqrt(sd**2 * (1 / 3 + 1 / 2) + p * (1 - p) * (2 / 100)))


def test_planned_detectable_drops_match_the_test_that_will_be_run():
    from sftbench.regression.accuracy import accuracy_test, detectable_drop

    base_values = [0.70, 0.80, 0.90, 0.75]  # a wide spread: the significance limit, not abs_tol, binds
    sd = float(np.std(base_values, ddof=1))
    for new_values in ([0.8], [0.75, 0.85, 0.80]):
        new_sd = float(np.std(new_values, ddof=1)) if len(new_values) > 1 else 0.0
        scale = sd / new_sd if new_sd else 1.0  # give the new seeds the baseline's sd, so the pooled sd is sd
        mean = np.mean(new_values)
        spread = [mean + (v - mean) * scale for v in new_values]
        test = accuracy_test(_baseline(base_values), _summary(spread), A)
        assert planned_detectable_drop(sd, 4, len(new_values), A) == pytest.approx(detectable_drop(test, A))
    assert planned_detectable_drop(sd, 1, 1, A) == math.inf  # no degree of freedom
    assert math.isfinite(planned_detectable_drop(sd, 2, 1, A))


# --- sftbench ab: decisions at their boundaries and the sentence they print ---------------------------------


def test_ab_speed_decisions_at_the_tolerance_and_alpha_boundaries():
    from sftbench.regression.ab import Ratio, decide_speed

    def decide(ratio, p):
        return decide_speed(Ratio("train_samples_per_s", ratio, None, None, 3, Status.PASS), p, 0.25, 0.5).status

    assert decide(0.70, 0.1) is Status.REGRESSED and decide(1.30, 0.1) is Status.IMPROVED
    assert decide(0.75, 0.1) is Status.PASS and decide(1.25, 0.1) is Status.PASS  # at the tolerance: within
    assert decide(2.10, 0.1) is Status.IMPROVED and decide(1.30, 0.5) is Status.PASS  # p at alpha: not significant
    assert decide(0.70, 0.5) is Status.NOISE and decide(0.70, None) is Status.NOISE
    assert decide_speed(Ratio("m", 0.7, None, None, 3, Status.PASS), 0.1, 0.25, 0.5).p_adjusted == 0.1


def test_ab_accuracy_decisions_at_their_boundaries():
    from sftbench.regression.ab import AccuracyDiff, decide_accuracy

    def decide(losses, gains, p):
        return decide_accuracy(AccuracyDiff(0.9, 0.9, losses, gains), p, 0.05).status

    assert decide(9, 2, 0.01) is Status.REGRESSED and decide(9, 2, 0.05) is Status.NOISE  # p at alpha: not significant
    assert decide(3, 3, 0.01) is Status.PASS and decide(2, 9, 0.01) is Status.IMPROVED
    assert decide(2, 9, 0.05) is Status.PASS and decide(1, 0, None) is Status.SKIPPED


def test_ab_without_rounds_skips_and_with_rounds_keeps_each_rounds_ratio():
    from sftbench.regression.ab import Ratio, measure_ratio, ratio_interval

    assert measure_ratio("eval_samples_per_s", [], 0.95) == Ratio("eval_samples_per_s", None, None, None, 0,
                                                                   Status.SKIPPED)
    made = measure_ratio("eval_samples_per_s", [0.912345, 1.1], 0.95)
    assert (made.status, made.rounds, made.per_round) == (Status.PASS, 2, [0.9123, 1.1])
    assert ratio_interval([0.9, 1.1], 0.95)[1] is not None and ratio_interval([0.9], 0.95)[1:] == (None, None)


def test_ab_reason_sentence_and_serialisation():
    from sftbench.regression.ab import AbCase, AccuracyDiff, Ratio, _reason

    speeds = [Ratio("train_samples_per_s", 0.8, 0.75, 0.85, 3, Status.REGRESSED, p_adjusted=0.0123),
              Ratio("eval_samples_per_s", 1.0, None, None, 1, Status.PASS),
              Ratio("peak_mb", None, None, None, 0, Status.SKIPPED)]
    acc = AccuracyDiff(0.9, 0.8, 12, 2, 0.001, 0.002, Status.REGRESSED)
    assert _reason(speeds, acc, 0.05) == ("train B/A 0.800 [0.750, 0.850] (Holm p=0.0123); eval B/A 1.000 (one round: "
                                          "no interval); accuracy lost 12, gained 2 examples (Holm p=0.002); "
                                          "tolerance 5%")
    assert _reason([], AccuracyDiff(0.9, 0.9), 0.1) == "; tolerance 10%"
    data = AbCase("c", Status.REGRESSED, "r", speeds[:1], acc, ["x"]).to_dict()
    assert data["status"] == "REGRESSED" and data["speeds"][0]["status"] == "REGRESSED"
    assert data["accuracy"]["status"] == "REGRESSED" and data["failed"] == ["x"] and data["case_id"] == "c"


def test_ab_pairs_rounds_both_sides_ran_and_skips_cached_probe_training_speed():
    from sftbench.regression.ab import paired_ratios, versions

    def rec(speed, path="images", seed=0):
        return fake_record(seed=seed, throughput={"train_samples_per_s": speed, "train_path": path})

    a = {0: [rec(100.0)], 1: [rec(100.0)], 2: [rec(100.0)]}
    b = {0: [rec(90.0)], 2: [rec(0.0)], 3: [rec(80.0)]}  # round 2: B measured nothing usable
    assert paired_ratios(a, b, rec(1.0).case_id, "train_samples_per_s") == [0.9]
    cached = {0: [rec(100.0, "cached_features")]}
    assert paired_ratios(cached, {0: [rec(50.0, "cached_features")]}, rec(1.0).case_id, "train_samples_per_s") == []
    assert versions([]) == dict.fromkeys(("torch", "timm", "sftbench", "python", "cuda"))
    assert versions([rec(1.0)])["torch"] == "2.14.1+cu130"


# --- run diffs ------------------------------------------------------------------------------------------


def _run_of(case, seeds_top1, run, peak=100.0, **env):
    return [fake_record(case_id=case, run_key=f"{case}-seed{s}", seed=s, run_id=run, metrics={"top1": t},
                        memory={"kind": "process_peak_rss", "peak_mb": peak}, env=env or {}) for s, t in seeds_top1]


def test_a_run_diff_lists_every_case_of_either_run_with_its_labels_counts_and_env_changes():
    from sftbench.regression.diff import diff_runs

    a = _run_of("both", [(0, 0.80), (1, 0.82)], "a") + _run_of("only_a", [(0, 0.5)], "a")
    b = _run_of("both", [(0, 0.60), (1, 0.62), (2, 0.61)], "b", peak=150.0) + _run_of("only_b", [(0, 0.5)], "b")
    failed_b = fake_record(case_id="both", run_key="both-seed3", seed=3, status="failed", metrics=None,
                           error={"type": "X", "message": "m", "phase": "train"})
    result = diff_runs(a, b + [failed_b], alpha=0.05)
    assert [c.case_id for c in result.cases] == ["both", "only_a", "only_b"]
    both, only_a, only_b = result.cases
    assert (both.n_a, both.n_b, both.test) == (2, 3, "welch")  # the failed seed counts nowhere
    assert both.labels == {"backbone": "test_efficientnet-random", "dataset": "synthetic", "strategy": "linear_probe"}
    assert both.seed_sd == pytest.approx(max(np.std([0.80, 0.82], ddof=1), np.std([0.60, 0.62, 0.61], ddof=1)))
    assert both.significant and both.peak_change == pytest.approx(0.5) and result.same_hardware
    assert (only_a.n_a, only_a.n_b, only_a.test, only_a.top1_b) == (1, 0, None, None)
    assert (only_b.n_a, only_b.n_b, only_b.labels["strategy"]) == (0, 1, "linear_probe")
    assert result.env_changes == {} and result.alpha == 0.05


def test_a_run_diff_names_the_environment_keys_that_changed_by_their_commonest_value():
    from sftbench.regression.diff import diff_runs

    a = _run_of("c", [(0, 0.8), (1, 0.8), (2, 0.8)], "a")
    b = [r.model_copy(update={"env": r.env.model_copy(update={"torch": t})})
         for r, t in zip(_run_of("c", [(0, 0.8), (1, 0.8), (2, 0.8)], "b"), ("9.9", "9.9", "2.14.1+cu130"))]
    assert diff_runs(a, b).env_changes == {"torch": ("2.14.1+cu130", "9.9")}


def test_a_difference_within_the_seed_noise_or_of_single_different_seeds_is_not_significant():
    from sftbench.regression.diff import diff_runs

    noisy = diff_runs(_run_of("c", [(0, 0.70), (1, 0.90)], "a"), _run_of("c", [(2, 0.70), (3, 0.89)], "b"))
    assert not noisy.cases[0].significant
    single = diff_runs(_run_of("c", [(0, 0.90)], "a"), _run_of("c", [(1, 0.10)], "b")).cases[0]
    assert single.caveat == ("different single seeds: seed noise unknown, not judged (run >= 2 seeds or the same "
                             "seeds)") and not single.significant and single.test == "two-proportion"


# --- speed between runs: the tolerance's sources, its boundaries and the sentence ---------------------------


def _speed(train=100.0, peak=1000.0, gemm=100.0, gpu=None, digest="fp"):
    from sftbench.regression.summary import RunSpeed

    return RunSpeed(run_id="r", train_samples_per_s=train, eval_samples_per_s=400.0, peak_mb=peak, workload="w",
                    gemm_gflops=gemm, copy_gbps=20.0, gpu_tflops=gpu, drift=0.0, fingerprint_digest=digest)


def test_the_speed_tolerance_from_an_assumed_sd_and_its_sentence():
    from sftbench.regression.speed import between_runs_check
    from sftbench.schema import RelativeThreshold

    t = RelativeThreshold()  # rel_tol 5 %, alpha 0.01, assumed between-run sd 12 %
    check = between_runs_check("train_throughput", [_speed()] * 3, [_speed(train=60.0)], t, True)
    width = scipy_stats.norm.isf(0.01) * 0.12 * math.sqrt(1 / 3 + 1)
    assert check.tolerance == pytest.approx(math.expm1(width)) and check.status is Status.REGRESSED
    assert check.reason == (f"train_throughput -40.0% (tolerance {100 * math.expm1(width):.1f}%: no baseline case has "
                            "two runs: assumed between-run sd 12 %, floor 5%)")
    assert (check.baseline, check.current, check.test) == (pytest.approx(100.0), pytest.approx(60.0), "between-runs")


def test_the_speed_tolerance_from_the_pooled_noise_and_its_sentence():
    from sftbench.regression.speed import RunNoise, between_runs_check
    from sftbench.schema import RelativeThreshold

    noise = RunNoise(sd=0.05, dof=4, cases=2)
    check = between_runs_check("train_throughput", [_speed()] * 3, [_speed(train=200.0)] * 2, RelativeThreshold(),
                               True, noise)
    width = scipy_stats.t.isf(0.01, 4) * 0.05 * math.sqrt(1 / 3 + 1 / 2)
    assert check.status is Status.IMPROVED and check.tolerance == pytest.approx(math.expm1(width))
    assert check.reason == (f"train_throughput +100.0% (tolerance {100 * math.expm1(width):.1f}%: between-run sd 5.0 % "
                            "from 2 case(s)' baseline runs, 4 dof, 3 run(s) of this case, floor 5%)")


def test_the_floor_holds_both_ways_when_it_is_wider_than_the_noise():
    from sftbench.regression.speed import between_runs_check
    from sftbench.schema import RelativeThreshold

    half = RelativeThreshold(rel_tol=0.5)  # floor: a halving, log 2 either way, wider than the assumed sd's
    assert between_runs_check("train_throughput", [_speed()], [_speed(train=51.0)], half, True).status is Status.NOISE
    assert between_runs_check("train_throughput", [_speed()], [_speed(train=49.0)], half, True).status is Status.REGRESSED
    assert between_runs_check("train_throughput", [_speed()], [_speed(train=195.0)], half, True).status is Status.PASS
    assert between_runs_check("train_throughput", [_speed()], [_speed(train=205.0)], half, True).status is Status.IMPROVED
    lower_is_better = between_runs_check("peak_memory", [_speed()], [_speed(peak=3000.0)], half, False)
    assert lower_is_better.status is Status.REGRESSED  # memory tripled


def test_a_speed_missing_or_non_positive_on_one_side_is_skipped_by_name():
    from sftbench.regression.speed import between_runs_check
    from sftbench.schema import RelativeThreshold

    skipped = between_runs_check("train_throughput", [_speed(train=0.0)], [_speed()], RelativeThreshold(), True)
    assert (skipped.status, skipped.reason) == (Status.SKIPPED, "train_throughput: missing on one side")
    small = between_runs_check("train_throughput", [_speed(train=0.5)], [_speed(train=0.5)], RelativeThreshold(), True)
    assert small.status is Status.PASS  # slow is still a speed


def test_the_machine_checks_name_what_changed():
    from sftbench.regression.speed import Machine, _fingerprint_change, calibration_difference

    base = {"cpu": {"model": 17, "flags": "a"}, "cores": 2, "x": 1, "y": 1, "z": 1}
    cur = {"cpu": {"model": 1, "flags": "a"}, "cores": 4, "new": True, "x": 2, "y": 2, "z": 2}
    assert _fingerprint_change(base, cur) == "cores 2 -> 4, cpu.model 17 -> 1, new None -> True, x 1 -> 2"
    assert _fingerprint_change(base, base) == "details unknown"
    slow = calibration_difference(Machine("k", [_speed(gemm=100.0)]), Machine("k", [_speed(gemm=50.0)]), 0.25)
    assert slow == ("the machine is not as fast as when blessed: GEMM GFLOP/s 50.0 now vs 100.0 at bless (-50 %), "
                    "beyond the ±25 % band")
    both = calibration_difference(Machine("k", [_speed(gemm=100.0, gpu=10.0)]),
                                  Machine("k", [_speed(gemm=50.0, gpu=30.0)]), 0.25)
    assert "(-50 %); GPU TFLOP/s 30.0 now vs 10.0 at bless (+200 %), beyond" in both


def test_memory_on_another_machine_is_not_judged_and_normalised_speed_uses_the_gpu_part_first():
    from sftbench.regression.speed import Machine, speed_checks
    from sftbench.schema import Thresholds, ThroughputThresholds

    other = speed_checks(Machine("a", [_speed()]), Machine("b", [_speed()]), Thresholds())
    assert (other[-1].status, other[-1].reason) == (Status.MACHINE_DIFFERS, "memory not judged: measured on another machine")
    t = Thresholds(throughput=ThroughputThresholds(beyond_band="normalise"))
    base, cur = Machine("k", [_speed(gpu=10.0)] * 3), Machine("k", [_speed(train=50.0, gemm=50.0, gpu=5.0)] * 3)
    checks = speed_checks(base, cur, t)
    train = checks[0]
    assert train.reason.startswith("train_throughput +0.0% normalised by GPU TFLOP/s ×0.50 (tolerance"), train.reason
    plain = speed_checks(base, base, t)[0]  # the same machine: no widening
    assert train.tolerance == pytest.approx(math.expm1(math.log1p(plain.tolerance) + math.log(2) / 2))


# --- compare: every kind of verdict with both sides' seed counts ---------------------------------------------


def _case_summary(case_id, values, spec="h", errors=(), env=None):
    from sftbench.regression.summary import CaseSummary

    return CaseSummary(case_id, spec, "cpu-k-2t", accuracy=dict(enumerate(values)), errors=list(errors),
                       env=env, runs=[_speed()])


def test_each_kind_of_verdict_states_its_reason_and_both_seed_counts():
    from sftbench.regression.baselines import Baseline, entry_from_summary
    from sftbench.regression.compare import check

    blessed = [_case_summary("ok", [0.9, 0.91, 0.92]), _case_summary("changed", [0.9, 0.9], spec="old"),
               _case_summary("gone", [0.8] * 4)]
    baseline = Baseline(suite="s", hardware_key="cpu-k-2t", cases={s.case_id: entry_from_summary(s) for s in blessed})
    current = {"ok": _case_summary("ok", [0.91]), "changed": _case_summary("changed", [0.9]),
               "new": _case_summary("new", [0.9, 0.9]), "broken": _case_summary("broken", [], errors=["seed 0: a",
                                                                                                   "seed 1: b"])}
    got = {v.case_id: (v.status, v.baseline_n, v.current_n, v.reason) for v in check(current, baseline, {})}
    assert got["changed"] == (Status.INCOMPARABLE, 2, 1, "spec hash h differs from the baseline's old: the case "
                                                          "definition changed; bless a new baseline")
    assert got["new"] == (Status.NEW, 0, 2, "no baseline for this case")
    assert got["broken"] == (Status.FAILED, 0, 0, "seed 0: a; seed 1: b")
    assert got["gone"] == (Status.MISSING, 4, 0, "in the baseline but not in this run")
    assert got["ok"][:3] == (Status.PASS, 3, 1) and list(got) == ["ok", "changed", "new", "broken", "gone"]


def test_the_fingerprint_of_each_side_reaches_the_speed_verdict():
    from sftbench.regression.baselines import Baseline, entry_from_summary
    from sftbench.regression.compare import check

    base = _case_summary("c", [0.9, 0.9], env=fake_record(env={"fingerprint": {"cpu": {"model": 17}},
                                                                "fingerprint_digest": "fp"}).env)
    baseline = Baseline(suite="s", hardware_key="cpu-k-2t", cases={"c": entry_from_summary(base)})
    moved = _case_summary("c", [0.9], env=fake_record(env={"fingerprint": {"cpu": {"model": 1}}}).env)
    moved.runs = [_speed(digest="other")]
    [verdict] = check({"c": moved}, baseline, {})
    assert verdict.check_for("train_throughput").reason == ("speed not judged: another machine under the same key: "
                                                            "cpu.model 17 -> 1")


# --- accuracy decisions: each sentence, worked by hand ----------------------------------------------------


def _acc(delta, test="seed-t", p=0.001, losses=None, gains=None, tolerance=0.05):
    return MetricCheck("accuracy", 0.5, 0.5 + delta, Status.PASS, "LIMITS", tolerance, p_value=p, test=test,
                       losses=losses, gains=gains, detectable_drop=0.03)


def test_each_accuracy_decision_and_its_sentence():
    from sftbench.regression.accuracy import decide_accuracy

    def decide(check, p_adjusted):
        made = decide_accuracy(check, p_adjusted, A)
        return made.status, made.reason

    evidence = "seed-t p=0.001, Holm p={} {} α=0.05; detectable drop 3.00 pp at 80 % power"
    assert decide(_acc(-0.0625), 0.01) == (Status.REGRESSED,
                                           f"accuracy -6.25 pp; {evidence.format('0.01', '<')}; LIMITS")
    assert decide(_acc(-0.0625), 0.05) == (Status.NOISE, f"accuracy -6.25 pp, not significant: "
                                                         f"{evidence.format('0.05', '≥')}; LIMITS")
    assert decide(_acc(-0.0625, test=None, p=None), None) == (Status.REGRESSED, "accuracy -6.25 pp; LIMITS")
    assert decide(_acc(-0.00390625), 0.01) == (Status.NOISE, "accuracy -0.39 pp within abs_tol 0.50 pp; LIMITS")
    assert decide(_acc(0.0), 0.9) == (Status.PASS, "accuracy +0.00 pp")
    assert decide(_acc(0.0625), 0.9) == (Status.IMPROVED, "accuracy +6.25 pp beyond LIMITS")
    mcnemar = decide(_acc(-0.0625, test="mcnemar", losses=9, gains=2), 0.01)[1]
    assert mcnemar.startswith("accuracy -6.25 pp; mcnemar (lost 9, gained 2 examples) p=0.001, Holm p=0.01 < α=0.05")
    skipped = MetricCheck("accuracy", None, None, Status.SKIPPED, "no accuracy on one side")
    assert decide_accuracy(skipped, 0.01, A) is skipped
    no_tolerance = MetricCheck("accuracy", 0.5, 0.4, Status.PASS, "L")  # nothing to decide against
    assert decide_accuracy(no_tolerance, 0.01, A).status is Status.PASS


def test_a_case_without_accuracy_on_one_side_is_skipped_in_one_phrase():
    from sftbench.regression.accuracy import accuracy_check
    from sftbench.schema import Thresholds

    made = accuracy_check(_baseline([0.9]), _summary([]), Thresholds())
    assert (made.metric, made.status, made.reason) == ("accuracy", Status.SKIPPED, "no accuracy on one side")


def test_a_baseline_entry_keeps_every_field_rounded_for_readable_diffs():
    from sftbench.regression.baselines import ENV_KEYS, entry_from_summary
    from sftbench.regression.summary import CaseSummary

    bits = _bits(3, 4)
    summary = CaseSummary("c", "h", "cpu", accuracy={1: 0.91234567, 0: 0.8}, train_throughput=[100.123, 200.456, 150.004],
                          eval_throughput=[400.0, 500.0], peak_mb=[1000.06], per_example={1: bits},
                          train_windows=[1.234, 5.678], eval_windows=[9.876], test_n=1000,
                          env=fake_record().env, sweep_point={"optimizer.lr": 0.01})
    entry = entry_from_summary(summary)
    assert entry.accuracy.values == {"0": 0.8, "1": 0.91234567} and entry.accuracy.n == 2
    assert (entry.accuracy.mean, entry.accuracy.std) == (0.856173, 0.07944)  # sd = 0.11234567 / sqrt(2)
    assert (entry.train_samples_per_s.median, entry.train_samples_per_s.n) == (150.0, 3)
    assert (entry.eval_samples_per_s.median, entry.eval_samples_per_s.n) == (450.0, 2)
    assert (entry.peak_mb.median, entry.peak_mb.n) == (1000.1, 1)
    assert entry.per_example == {"1": bits} and entry.train_windows == [1.23, 5.68] and entry.eval_windows == [9.88]
    assert entry.test_n == 1000 and entry.sweep_point == {"optimizer.lr": 0.01} and entry.spec_hash == "h"
    assert list(entry.env) == list(ENV_KEYS) and entry.env["torch"] == "2.14.1+cu130" and entry.env["git_commit"] is None
    assert entry_from_summary(CaseSummary("c", "h", "cpu", accuracy={0: 0.9})).env == dict.fromkeys(ENV_KEYS)


# --- baseline files: every refusal is one exact sentence ----------------------------------------------------


def test_every_unusable_baseline_file_is_refused_in_one_exact_sentence(tmp_path):
    from sftbench.regression.baselines import BASELINE_SCHEMA_VERSION, load_baseline

    def refusal(content: str | None, name="b.json") -> str:
        path = tmp_path / name
        if content is not None:
            path.write_text(content)
        with pytest.raises(SftbenchError) as err:
            load_baseline(path)
        return str(err.value)

    fix = "restore it from git or re-bless it with `sftbench baseline update`"
    assert refusal(None, "absent.json") == (f"cannot read baseline {str(tmp_path / 'absent.json')!r} (No such file or "
                                            "directory); check the path")
    assert refusal('{"a":\n  nope}') == f"baseline {tmp_path / 'b.json'} is not valid JSON (line 2); {fix}"
    (tmp_path / "bin.json").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ResultsFormatError, match=re.escape(f"baseline {tmp_path / 'bin.json'} is not valid JSON; {fix}")):
        load_baseline(tmp_path / "bin.json")
    assert refusal('{"schema_version": 99}') == (
        f"baseline {tmp_path / 'b.json'} has schema version 99, but this sftbench reads versions 1 to "
        f"{BASELINE_SCHEMA_VERSION}; upgrade sftbench to read it, or re-bless it with `sftbench baseline update`")
    assert refusal('{"schema_version": 3, "suite": "s", "hardware_key": "k", "cases": {"c": {"spec_hash": "h", '
                   '"accuracy": {"values": {"0": "high"}, "n": 1}}}}') == (
        f"baseline {tmp_path / 'b.json'}: field 'cases.c.accuracy.values.0' is missing or invalid (input should be a "
        "valid number, unable to parse string as a number); restore the file from git or re-bless it with "
        "`sftbench baseline update`")
    assert refusal('{"schema_version": 3, "suite": "s", "hardware_key": "k", "cases": {"c": {"spec_hash": "h", '
                   '"accuracy": {"values": {"best": 0.9}, "n": 1}}}}') == (
        f"baseline {tmp_path / 'b.json'}: field 'cases.c.accuracy.values' is missing or invalid (seed 'best' is not a "
        "whole number); restore the file from git or re-bless it with `sftbench baseline update`")


def test_a_loaded_baseline_knows_its_path_and_checks_each_entrys_bits(tmp_path):
    from sftbench.regression.baselines import Baseline, load_baseline, write_baseline

    entry = _baseline([0.9], bits=[_bits(4, 8)])  # 90 % stated, 50 % in the bits
    path = tmp_path / "s" / "k.json"
    write_baseline(Baseline(suite="s", hardware_key="k", cases={"c": entry}), path)
    with pytest.raises(ResultsFormatError, match=re.escape(f"{path}: case 'c' seed 0 states top-1 90.00 %")):
        load_baseline(path)
    write_baseline(Baseline(suite="s", hardware_key="k", cases={"c": _baseline([0.5], bits=[_bits(4, 8)])}), path)
    assert load_baseline(path).path == path


def test_blessing_refuses_every_failed_case_by_its_errors_and_keeps_the_rest():
    from sftbench.regression.baselines import update_baseline

    summaries = {"a": _case_summary("a", [], errors=["seed 0: x", "seed 1: y"]), "b": _case_summary("b", [], errors=["z"]),
                 "c": _case_summary("c", [0.9])}
    baseline, refused = update_baseline(None, summaries, "s", "cpu-k-2t")
    assert refused == ["a (seed 0: x; seed 1: y)", "b (z)"] and list(baseline.cases) == ["c"]
    with pytest.raises(SftbenchError, match=re.escape("results for 'c' come from hardware 'cpu-k-2t', not 'gpu'; bless "
                                                      "each hardware's results into its own baseline file")):
        update_baseline(None, {"c": summaries["c"]}, "s", "gpu")


def test_a_single_seed_diff_uses_the_two_sided_two_proportion_test_over_the_test_sizes():
    from sftbench.regression.diff import diff_runs

    [case] = diff_runs(_run_of("c", [(0, 0.75)], "a"), _run_of("c", [(1, 0.5)], "b")).cases
    one_way = stats.two_proportions(0.75, 0.5, 32, 32, 0.05).p_value  # the template's test split: 32 images
    other_way = stats.two_proportions(0.5, 0.75, 32, 32, 0.05).p_value
    assert case.p_value == pytest.approx(min(1.0, 2 * min(one_way, other_way)))
    assert 0.0 < case.p_value < 0.1


def test_ab_end_to_end_on_fakes_names_failures_and_orders_cases_as_a_ran_them():
    from sftbench.regression.ab import compare_ab

    def rec(case, train, run="a", ok=True):
        changes = dict(case_id=case, run_key=f"{case}-seed0", run_id=run,
                       throughput={"train_samples_per_s": train, "eval_samples_per_s": 400.0, "train_path": "images"})
        if not ok:
            changes.update(status="failed", metrics=None, error={"type": "X", "message": "boom", "phase": "train"})
        return fake_record(**changes)

    a = {i: [rec("slow", 100.0), rec("same", 100.0)] for i in range(3)}
    b = {i: [rec("slow", 50.0, "b"), rec("same", 100.0, "b")] + ([rec("same", 0.0, "b2", ok=False)] if i == 1 else [])
         for i in range(3)}
    slow, same = compare_ab(a, b)
    assert (slow.case_id, slow.status, same.case_id, same.status) == ("slow", Status.REGRESSED, "same", Status.FAILED)
    assert slow.reason.startswith("train B/A 0.500 [0.500, 0.500] (Holm p=0); eval B/A 1.000 [1.000, 1.000] (Holm p=1)")
    assert same.reason == "b2 seed 0: boom" and same.failed == ["b2 seed 0: boom"]


def test_a_case_blessed_from_one_run_borrows_the_noise_of_the_others():
    from sftbench.regression.baselines import Baseline, entry_from_summary
    from sftbench.regression.compare import check

    spread = _case_summary("spread", [0.9])
    spread.runs = [_speed(train=t) for t in (90.0, 100.0, 110.0)]
    single = _case_summary("single", [0.9])  # one run: no spread of its own
    baseline = Baseline(suite="s", hardware_key="cpu-k-2t",
                        cases={s.case_id: entry_from_summary(s) for s in (spread, single)})
    verdict = check({"single": _case_summary("single", [0.9])}, baseline, {})[0]
    assert "between-run sd" in verdict.check_for("train_throughput").reason
    assert "from 1 case(s)' baseline runs, 2 dof, 1 run(s) of this case" in verdict.check_for("train_throughput").reason


def test_a_runs_speed_is_rounded_to_a_thousandth_and_its_calibration_read_at_its_slowest():
    from sftbench.regression.summary import run_speeds

    cal = {"workload": "w", "threads": 2, "before": {"gemm_gflops": 100.0, "copy_gbps": 10.0},
           "after": {"gemm_gflops": 80.0, "copy_gbps": 12.0}}
    records = [fake_record(run_key=f"c-seed{s}", seed=s, case_id="c", throughput={"train_samples_per_s": v,
                                                                                    "train_windows": [], "train_path": "images"},
                           env={"calibration": cal, "fingerprint_digest": "fp"}) for s, v in ((0, 1.23456), (1, 1.23456))]
    [run] = run_speeds(records)["c"]
    assert run.train_samples_per_s == 1.235 and run.gemm_gflops == 80.0 and run.copy_gbps == 10.0
    assert run.drift == 0.2 and run.workload == "w" and run.fingerprint_digest == "fp"

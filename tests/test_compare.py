from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from sftbench.errors import SftbenchError
from sftbench.regression.baselines import Baseline, entry_from_summary, update_baseline
from sftbench.regression.compare import Status, check
from sftbench.regression.gate import exit_code
from sftbench.regression.summary import CaseSummary, RunSpeed
from sftbench.report.verdicts import junit_xml, markdown, print_verdicts
from sftbench.results.record import PerExample
from sftbench.schema import Thresholds

T = Thresholds()


def speed_run(train=100.0, evals=400.0, peak=1000.0, gemm=100.0, run_id="r0", digest="fp", drift=0.0):
    """One calibrated run of a case on machine `digest` whose GEMM calibration read `gemm` GFLOP/s."""
    return RunSpeed(run_id=run_id, train_samples_per_s=train, eval_samples_per_s=evals, peak_mb=peak,
                    workload="w", gemm_gflops=gemm, copy_gbps=20.0, drift=drift, fingerprint_digest=digest)


def summary(case_id="c", acc=(0.90,), train=100.0, evals=400.0, peak=1000.0, spec="h1", hw="cpu", errors=(),
            test_n=None, per_example=None, runs=None):
    return CaseSummary(case_id, spec, hw, accuracy=dict(enumerate(acc)), train_throughput=[train] if train else [],
                       eval_throughput=[evals] if evals else [], peak_mb=[peak] if peak else [], errors=list(errors),
                       env={"torch": "2.14.1"}, test_n=test_n, per_example=per_example or {},
                       runs=runs if runs is not None else [speed_run(train, evals, peak)])


def three_runs(train=(99.0, 100.0, 101.0), **kw):
    return [speed_run(t, run_id=f"r{i}", **kw) for i, t in enumerate(train)]


def baseline_of(*summaries: CaseSummary, hw="cpu") -> Baseline:
    return Baseline(suite="s", hardware_key=hw, cases={s.case_id: entry_from_summary(s) for s in summaries})


def verdict(current: CaseSummary, base: CaseSummary, thresholds: Thresholds = T):
    [v] = check({current.case_id: current}, baseline_of(base), {current.case_id: thresholds})
    return v


# --- accuracy ---------------------------------------------------------------------------------


def bits(n_right: int, n: int = 1000, flip_wrong: int = 0, flip_right: int = 0) -> PerExample:
    """The first n_right of n examples right; then `flip_wrong` of those made wrong and
    `flip_right` of the wrong ones made right (a paired, per-example change)."""
    correct = np.arange(n) < n_right
    correct[:flip_wrong] = False
    correct[n_right:n_right + flip_right] = True
    return PerExample.from_bools(correct, "digest")


def test_single_seeds_use_a_two_proportion_test_on_the_test_size():
    base = summary(test_n=10_000)
    assert verdict(summary(acc=(0.897,), test_n=10_000), base).status is Status.NOISE  # -0.3 pp within 0.5 pp
    big = verdict(summary(acc=(0.89,), test_n=10_000), base)  # -1 pp on 10k examples: significant
    acc = big.check_for("accuracy")
    assert big.status is Status.REGRESSED and acc.test == "two-proportion" and acc.p_adjusted < 0.05
    small = verdict(summary(acc=(0.89,), test_n=1_000), summary(test_n=1_000))  # -1 pp on 1k: not significant
    assert small.status is Status.NOISE and "not significant" in small.reason
    assert small.check_for("accuracy").detectable_drop > 0.02


def test_seed_noise_is_learnt_from_the_baseline_seeds():
    noisy_base, noisy_run = summary(acc=(0.90, 0.93, 0.87)), summary(acc=(0.89, 0.92, 0.86))  # sd 3 pp, drop 1 pp
    v = verdict(noisy_run, noisy_base)
    acc = v.check_for("accuracy")
    assert acc.test == "seed-t" and "learnt seed sd 3.00 pp (4 dof)" in v.reason and v.status is Status.NOISE
    # t(0.05, 4 dof) x 3 pp x sqrt(1/3 + 1/3) = 5.23 pp: the drop the test calls significant
    assert acc.tolerance == pytest.approx(0.0523, abs=2e-4)


def test_seed_t_test_of_a_new_seed_against_the_baseline_seeds():
    base = summary(acc=(0.900, 0.905, 0.895, 0.902, 0.898))  # sd 0.38 pp
    within = verdict(summary(acc=(0.893,)), base)  # -0.7 pp: beyond abs_tol, but t = 1.68 (p = 0.084)
    assert within.status is Status.NOISE and within.check_for("accuracy").test == "seed-t"
    clear = verdict(summary(acc=(0.885,)), base)  # -1.5 pp: t = 3.60 (p = 0.011)
    acc = clear.check_for("accuracy")
    assert clear.status is Status.REGRESSED and acc.p_value < 0.02 and "detectable drop" in clear.reason
    # the stated detectable drop is caught with 80 % power: larger than the critical drop
    assert acc.detectable_drop > acc.tolerance


def test_one_seed_a_side_falls_back_to_mcnemar_and_says_no_noise_was_learnt():
    base = summary(acc=(0.90,), per_example={0: bits(900)})
    drop = verdict(summary(acc=(0.87,), per_example={0: bits(900, flip_wrong=30)}), base)
    acc = drop.check_for("accuracy")
    assert drop.status is Status.REGRESSED and acc.test == "mcnemar" and (acc.losses, acc.gains) == (30, 0)
    assert "lost 30, gained 0 examples" in drop.reason and "detectable drop" in drop.reason
    assert "no seed noise learnt" in drop.reason
    churn = verdict(summary(acc=(0.895,), per_example={0: bits(900, flip_wrong=30, flip_right=25)}), base)
    assert churn.status is Status.NOISE  # -0.5 pp: within abs_tol


def test_holm_keeps_a_many_case_run_from_crying_wolf():
    base = {f"c{i}": summary(f"c{i}", test_n=10_000) for i in range(10)}
    run = {f"c{i}": summary(f"c{i}", acc=(0.892,), test_n=10_000) for i in range(10)}  # each p ~ 0.03
    verdicts = check(run, baseline_of(*base.values()), {})
    assert {v.status for v in verdicts} == {Status.NOISE}
    assert all(v.check_for("accuracy").p_value < 0.05 < v.check_for("accuracy").p_adjusted for v in verdicts)
    [alone] = check({"c0": run["c0"]}, baseline_of(base["c0"]), {})
    assert alone.status is Status.REGRESSED


# --- throughput, memory, hardware, spec ----------------------------------------------------------


def test_case_status_combines_metrics():
    base = summary(runs=three_runs())
    assert verdict(summary(), base).status is Status.PASS
    slow = verdict(summary(train=80.0), base)
    assert slow.status is Status.REGRESSED
    assert slow.reason.startswith("train_throughput -20.0% (tolerance 8.4%: between-run sd 1.0 % from 1 case(s)' baseline runs, 2 dof")
    assert verdict(summary(acc=(0.95,)), base).status is Status.IMPROVED
    assert verdict(summary(acc=(0.95,), peak=2000.0), base).status is Status.REGRESSED


def test_missing_metrics_are_skipped_not_fatal():
    v = verdict(summary(train=None), summary())
    assert v.check_for("train_throughput").status is Status.SKIPPED and v.status is Status.PASS


def test_other_hardware_compares_accuracy_and_skips_speed_naming_both_keys():
    v = verdict(summary(hw="nvidia-h200", train=10.0, acc=(0.5,), test_n=1000), summary(test_n=1000))
    assert v.status is Status.REGRESSED and v.check_for("accuracy").status is Status.REGRESSED
    speed = v.check_for("train_throughput")
    assert speed.status is Status.MACHINE_DIFFERS and "measured on 'nvidia-h200', baseline from 'cpu'" in speed.reason
    assert verdict(summary(hw="nvidia-h200", train=10.0), summary()).status is Status.PASS


def test_spec_mismatch_is_incomparable_and_says_which():
    v = verdict(summary(spec="h2"), summary())
    assert v.status is Status.INCOMPARABLE and "spec hash h2 differs from the baseline's h1" in v.reason


def test_new_missing_failed():
    verdicts = check({"a": summary("a"), "f": summary("f", errors=["seed 0: boom"])}, baseline_of(summary("b")), {})
    assert [(v.case_id, v.status) for v in verdicts] == [("a", Status.NEW), ("f", Status.FAILED), ("b", Status.MISSING)]
    assert check({"a": summary("a")}, None, {})[0].status is Status.NEW


def test_exit_codes():
    def v(*statuses):
        return [type("V", (), {"status": s})() for s in statuses]

    assert exit_code(v(Status.PASS, Status.IMPROVED, Status.NOISE, Status.NEW)) == 0
    assert exit_code(v(Status.PASS, Status.REGRESSED)) == 1
    assert exit_code(v(Status.REGRESSED, Status.FAILED)) == 3
    assert exit_code(v(Status.MISSING, Status.INCOMPARABLE)) == 0
    assert exit_code(v(Status.MISSING), strict=True) == 1
    assert exit_code(v(Status.PASS, Status.NEW)) == 0
    assert exit_code(v(Status.PASS, Status.NEW), require_baseline=True) == 1  # a missing baseline cannot pass
    assert exit_code(v(Status.NEW, Status.FAILED), require_baseline=True) == 3  # a failure still says so first
    assert exit_code(v(Status.PASS), require_baseline=True) == 0


def test_baseline_update_refuses_results_of_another_hardware():
    with pytest.raises(SftbenchError, match=r"results for 'c' come from hardware 'cuda-h100', not 'cpu'; bless each"):
        update_baseline(None, {"c": summary(hw="cuda-h100")}, "s", "cpu")


def test_pick_baseline_falls_back_from_the_exact_key_to_the_device_type_then_to_any(tmp_path):
    from sftbench.regression.baselines import write_baseline
    from sftbench.regression.gate import pick_baseline

    def bless(hw):
        write_baseline(baseline_of(summary(hw=hw), hw=hw), tmp_path / "s" / f"{hw}.json")

    assert pick_baseline(None, tmp_path, "s", "cpu-intel-xeon-8t") is None  # nothing blessed
    bless("cuda-nvidia-h100")
    assert pick_baseline(None, tmp_path, "s", "cpu-intel-xeon-8t").hardware_key == "cuda-nvidia-h100"  # any
    bless("cpu-amd-epyc-2t")
    assert pick_baseline(None, tmp_path, "s", "cpu-intel-xeon-8t").hardware_key == "cpu-amd-epyc-2t"  # same type
    bless("cpu-intel-xeon-8t")
    assert pick_baseline(None, tmp_path, "s", "cpu-intel-xeon-8t").hardware_key == "cpu-intel-xeon-8t"  # exact
    # a CUDA key names its GPU model, so another model is no closer than a CPU: the first file, for accuracy only
    assert pick_baseline(None, tmp_path, "s", "cuda-nvidia-a100").hardware_key == "cpu-amd-epyc-2t"


def test_baseline_update_pools_seeds_and_refuses_failures():
    base, refused = update_baseline(None, {"a": summary("a", acc=(0.9, 0.8)), "f": summary("f", errors=["seed 0: x"])},
                                    "s", "cpu")
    assert list(base.cases) == ["a"] and refused == ["f (seed 0: x)"]
    entry = base.cases["a"].accuracy
    assert entry.n == 2 and entry.mean == pytest.approx(0.85) and entry.values == {"0": 0.9, "1": 0.8}
    text = base.to_json()
    assert text.index('"accuracy"') < text.index('"spec_hash"')  # stable, sorted key order


# --- reports ----------------------------------------------------------------------------------


def golden_verdicts():
    base = baseline_of(summary("steady"), summary("worse"), summary("gone"))
    current = {"steady": summary("steady"), "worse": summary("worse", acc=(0.85,)), "fresh": summary("fresh"),
               "broken": summary("broken", errors=["seed 0: training loss became nan"])}
    return check(current, base, {})


GOLDEN = Path(__file__).parent / "golden" / "verdicts_w100.txt"


def test_golden_rich_table_at_fixed_width():
    buffer = io.StringIO()
    print_verdicts(Console(file=buffer, width=100, color_system=None), golden_verdicts(), "golden")
    rendered = "\n".join(line.rstrip() for line in buffer.getvalue().splitlines()) + "\n"
    assert rendered == GOLDEN.read_text()


def test_junit_parses_with_a_junit_library(tmp_path):
    from junitparser import Error, Failure, JUnitXml, Skipped

    path = tmp_path / "j.xml"
    path.write_text(junit_xml(golden_verdicts(), "s"))
    suites = list(JUnitXml.fromfile(str(path)))
    cases = {c.name: c for c in suites[0]}
    assert set(cases) == {"steady", "worse", "fresh", "broken", "gone"}
    assert isinstance(cases["worse"].result[0], Failure) and "-5.00 pp" in cases["worse"].result[0].message
    assert isinstance(cases["broken"].result[0], Error)
    assert isinstance(cases["gone"].result[0], Skipped)
    assert cases["steady"].is_passed and cases["fresh"].is_passed
    assert (suites[0].failures, suites[0].errors) == (1, 1)


def test_markdown_report():
    text = markdown(golden_verdicts(), "check")
    assert "| worse | ❌ **REGRESSED** | 90.00 | 85.00 | -5.00 |" in text
    assert text.rstrip().endswith("1 PASS, 1 REGRESSED, 1 NEW, 1 MISSING, 1 FAILED")


def test_cached_probe_speed_is_not_gated():
    from conftest import fake_record

    from sftbench.regression.summary import summarise

    def rec(path):
        return fake_record(case_id=f"c-{path}", run_key=f"c-{path}-seed0", seed=0, spec_hash="h", status="ok",
                           env={"hardware_key": "cpu"}, metrics={"top1": 0.9}, memory={"peak_mb": 10.0},
                           throughput={"train_samples_per_s": 5e4, "eval_samples_per_s": 100.0, "train_path": path})

    summaries = summarise([rec("cached_features"), rec("images")])
    assert summaries["c-cached_features"].train_throughput == [] and summaries["c-images"].train_throughput == [5e4]
    assert summaries["c-cached_features"].eval_throughput == [100.0]


def test_summarise_keeps_the_latest_record_of_a_seed_and_refuses_mixed_specs():
    from conftest import fake_record

    from sftbench.regression.summary import summarise

    def rec(seed, top1, spec="h", run="r1"):
        return fake_record(case_id="c", run_key=f"c-seed{seed}", seed=seed, spec_hash=spec, run_id=run, status="ok",
                           metrics={"top1": top1})

    # seed 0 ran twice (a resumed or repeated case): the later record wins, and seed 1 is kept
    s = summarise([rec(0, 0.80), rec(1, 0.90), rec(0, 0.85, run="r2")])["c"]
    assert s.accuracy == {0: 0.85, 1: 0.90}
    with pytest.raises(SftbenchError, match=r"results for case 'c' mix two suite definitions \(spec hashes h and h2\)"):
        summarise([rec(0, 0.80), rec(1, 0.90, spec="h2")])


# --- hand-worked figures (independent of the code's earlier output) ---------------------------------


def test_seed_t_verdict_matches_the_closed_form_for_two_degrees_of_freedom():
    """Baseline seeds 90, 91, 92 % (sd 1 pp, 2 dof), one new seed. se = 1 pp * sqrt(1 + 1/3) = 1.1547 pp.
    For 2 dof the t cdf is 0.5 + t / (2 sqrt(2 + t^2)): 88 % gives t = -2.598, p = 0.0608 (NOISE);
    87 % gives t = -3.464, p = 0.0371 (REGRESSED). Critical t(0.95, 2) = 0.9 sqrt(2 / 0.19) = 2.920,
    so the tolerance is 2.920 * 1.1547 = 3.372 pp."""
    base = summary(acc=(0.90, 0.91, 0.92))
    noise, regressed = (verdict(summary(acc=(a,)), base).check_for("accuracy") for a in (0.88, 0.87))
    assert noise.status is Status.NOISE and noise.p_value == pytest.approx(0.0608, abs=1e-4)
    assert regressed.status is Status.REGRESSED and regressed.p_value == pytest.approx(0.0371, abs=1e-4)
    assert noise.tolerance == regressed.tolerance == pytest.approx(0.03372, abs=1e-5)


def test_holm_over_two_cases_worked_by_hand():
    """The same two new seeds as two cases of one run: Holm multiplies the smaller p by 2 (0.0742 >= 0.05),
    so neither is REGRESSED although 0.0371 alone would be."""
    base = baseline_of(summary("a", acc=(0.90, 0.91, 0.92)), summary("b", acc=(0.90, 0.91, 0.92)))
    verdicts = check({"a": summary("a", acc=(0.87,)), "b": summary("b", acc=(0.88,))}, base, {})
    by = {v.case_id: v.check_for("accuracy") for v in verdicts}
    assert by["a"].p_adjusted == pytest.approx(0.0742, abs=1e-4) and by["b"].p_adjusted == pytest.approx(0.0742, abs=1e-4)
    assert {c.status for c in by.values()} == {Status.NOISE}

"""Speed verdicts between runs: machine calibration, fingerprints, MACHINE-DIFFERS, tolerances from
the spread between runs, and the --baseline refusals. Fake calibrations and records only."""
from __future__ import annotations

import math

import pytest
import torch
from conftest import fake_record

from sftbench.engine import calibration
from sftbench.engine.calibration import Calibrator, Workload, measure
from sftbench.errors import SftbenchError
from sftbench.regression.baselines import Baseline, entry_from_summary
from sftbench.regression.compare import Status, check
from sftbench.regression.gate import ensure_covers, exit_code, pick_baseline
from sftbench.regression.speed import Machine, RunNoise, between_run_noise, log_tolerance, machine_difference
from sftbench.regression.summary import RunSpeed, summarise
from sftbench.results.environment import fingerprint, fingerprint_digest
from sftbench.schema import RelativeThreshold, Thresholds, ThroughputThresholds

T = Thresholds()
CPU = torch.device("cpu")


# --- calibration --------------------------------------------------------------------------------


def test_each_case_is_bracketed_and_the_reading_after_one_case_is_the_next_ones_before(monkeypatch):
    monkeypatch.setenv("SFTBENCH_CALIBRATION", "quick")
    readings = iter(range(100))
    calibrator = Calibrator(lambda device, workload: {"gemm_gflops": float(next(readings)), "copy_gbps": 1.0})
    first = calibrator.bracket(CPU)()
    second = calibrator.bracket(CPU)()
    assert (first["before"]["gemm_gflops"], first["after"]["gemm_gflops"]) == (1.0, 2.0)  # reading 0: warm-up
    assert (second["before"]["gemm_gflops"], second["after"]["gemm_gflops"]) == (2.0, 3.0)
    assert first["workload"] == "numpy-sgemm128x2-copy2MBx2-q75-v2" and first["threads"] == torch.get_num_threads()


def test_a_new_thread_count_takes_its_own_reading_before_the_case(monkeypatch):
    monkeypatch.setenv("SFTBENCH_CALIBRATION", "quick")
    readings = iter(range(100))
    calibrator = Calibrator(lambda device, workload: {"gemm_gflops": float(next(readings)), "copy_gbps": 1.0})
    calibrator.bracket(CPU)()  # readings 0 (warm-up), 1 and 2 at the current thread count
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(threads + 1)
        other = calibrator.bracket(CPU)()
    finally:
        torch.set_num_threads(threads)
    assert other["before"]["gemm_gflops"] == 4.0 and other["threads"] == threads + 1  # 3: its warm-up


def test_calibration_off_measures_nothing(monkeypatch):
    monkeypatch.setenv("SFTBENCH_CALIBRATION", "off")
    assert Calibrator(lambda *a: pytest.fail("measured")).bracket(CPU) is None


def test_the_real_workload_measures_positive_rates_without_torch_kernels(monkeypatch):
    used = []
    monkeypatch.setattr(torch, "mm", lambda *a: used.append(a))  # the workload must not go through torch
    reading = measure(CPU, Workload(64, 1, 1, 1, 3))
    assert reading["gemm_gflops"] > 0 and reading["copy_gbps"] > 0 and reading["gpu_tflops"] is None
    assert reading["spread"] >= 0 and not used


def test_fingerprint_names_the_generation_and_threads(monkeypatch):
    monkeypatch.setattr(calibration, "configured_workload", lambda: None)
    print_ = fingerprint(CPU)
    assert set(print_["cpu"]) >= {"vendor", "family", "model", "stepping", "logical_cores", "memory_gib", "flags_digest"}
    assert print_["threads"] == torch.get_num_threads()
    other = {**print_, "cpu": {**print_["cpu"], "model": "1"}}
    assert fingerprint_digest(other) != fingerprint_digest(print_) == fingerprint_digest(dict(print_))


# --- records -> run speeds ------------------------------------------------------------------------


def _record(run_id, seed=0, train=100.0, gemm=(100.0, 100.0), digest="fp", case_id="c"):
    cal = {"workload": "w", "threads": 2, "before": {"gemm_gflops": gemm[0], "copy_gbps": 20.0},
           "after": {"gemm_gflops": gemm[1], "copy_gbps": 20.0}}
    return fake_record(case_id=case_id, run_key=f"{case_id}-seed{seed}", seed=seed, run_id=run_id, spec_hash="h",
                       status="ok", metrics={"top1": 0.9}, memory={"peak_mb": 500.0},
                       env={"hardware_key": "cpu", "fingerprint_digest": digest, "calibration": cal},
                       throughput={"train_samples_per_s": train, "eval_samples_per_s": 4 * train, "train_path": "images"})


def test_every_run_of_a_case_is_kept_even_with_the_same_seed():
    s = summarise([_record("r1", train=90.0, gemm=(100.0, 121.0)), _record("r2", train=110.0)])["c"]
    assert [r.run_id for r in s.runs] == ["r1", "r2"] and list(s.accuracy) == [0]  # accuracy: latest per seed
    first = s.runs[0]
    assert first.train_samples_per_s == 90.0 and first.eval_samples_per_s == 360.0 and first.peak_mb == 500.0
    assert first.gemm_gflops == 100.0  # the slower of the readings around the case
    assert first.drift == pytest.approx(0.21) and first.fingerprint_digest == "fp" and first.workload == "w"


def test_a_runs_speed_is_its_median_window_so_one_stalled_window_does_not_move_it():
    record = _record("r1", train=80.0)
    stalled = record.model_copy(update={"throughput": record.throughput.model_copy(
        update={"train_windows": [100.0, 101.0, 10.0, 99.0, 100.0], "eval_windows": [400.0, 40.0, 400.0]})})
    [run] = summarise([stalled])["c"].runs
    assert (run.train_samples_per_s, run.eval_samples_per_s) == (100.0, 400.0)


def test_a_run_with_an_uncalibrated_record_counts_as_uncalibrated():
    bare = _record("r1", seed=1).model_copy(update={"env": _record("r1").env.model_copy(update={"calibration": None})})
    [run] = summarise([_record("r1"), bare])["c"].runs
    assert run.workload is None and run.gemm_gflops is None and run.train_samples_per_s == 100.0


# --- machine comparability ---------------------------------------------------------------------------


def run(train=100.0, gemm=100.0, digest="fp", drift=0.0, run_id="r", workload="w", peak=500.0, copy=20.0):
    return RunSpeed(run_id=run_id, train_samples_per_s=train, eval_samples_per_s=4 * train, peak_mb=peak,
                    workload=workload, gemm_gflops=gemm, copy_gbps=copy, drift=drift, fingerprint_digest=digest)


BASE_RUNS = [run(99.0, run_id="b0"), run(100.0, gemm=102.0, run_id="b1"), run(101.0, gemm=98.0, run_id="b2")]


def machine(*runs, key="cpu", fp=None):
    return Machine(key, list(runs), fp)


@pytest.mark.parametrize(("current", "expected"), [
    (machine(run(), key="cpu-other"), "measured on 'cpu-other', baseline from 'cpu'"),
    (machine(run(workload=None)), "this run was not calibrated"),
    (machine(run(digest="other")), "another machine under the same key"),
    (machine(run(workload="v2")), "the calibration workload changed"),
    (machine(run(gemm=50.0)), "GEMM GFLOP/s 50.0 now vs 100.0 at bless (-50 %), beyond the ±25 % band"),
    (machine(run(copy=30.0)), "copy GB/s 30.0 now vs 20.0 at bless (+50 %)"),
])
def test_speed_is_not_judged_on_another_or_a_slower_machine_and_says_why(current, expected):
    why = machine_difference(machine(*BASE_RUNS), current, ThroughputThresholds())
    assert why is not None and expected in why


def test_the_same_machine_within_the_band_is_judged():
    assert machine_difference(machine(*BASE_RUNS), machine(run(gemm=81.0)), ThroughputThresholds()) is None
    assert machine_difference(machine(*BASE_RUNS), machine(run(gemm=79.0)), ThroughputThresholds()) is not None


def test_an_old_baseline_without_calibration_leaves_speed_unjudged():
    old = [RunSpeed(run_id="x", train_samples_per_s=100.0)]
    assert "blessed by an older sftbench" in machine_difference(machine(*old), machine(run()), ThroughputThresholds())
    assert "blessed by an older sftbench" in machine_difference(machine(), machine(run()), ThroughputThresholds())


def test_fingerprint_change_is_named_field_by_field():
    base = machine(*BASE_RUNS, fp={"cpu": {"model": "17", "family": "25"}, "threads": 2})
    cur = machine(run(digest="x"), fp={"cpu": {"model": "1", "family": "25"}, "threads": 2})
    assert "cpu.model 17 -> 1" in machine_difference(base, cur, ThroughputThresholds())


# --- tolerances from the spread between runs ------------------------------------------------------------


def test_between_run_noise_is_pooled_over_the_cases_runs():
    noise = between_run_noise([[run(100.0), run(110.0)], [run(50.0), run(50.0), run(50.0)], [run(80.0)]],
                              "train_throughput")
    assert (noise.dof, noise.cases) == (3, 2)  # 1 + 2 degrees of freedom; a one-run case adds none
    assert noise.sd == pytest.approx(math.sqrt(math.log(1.1) ** 2 / 2 / 3))
    assert between_run_noise([[run(100.0)]], "train_throughput") is None


def test_tolerance_is_a_t_prediction_interval_with_the_pooled_noise():
    width, source = log_tolerance([99.0, 100.0, 101.0], 1, RelativeThreshold(rel_tol=0.0, alpha=0.01),
                                  RunNoise(sd=0.1, dof=4, cases=2))
    assert width == pytest.approx(3.746947 * 0.1 * math.sqrt(1 / 3 + 1), rel=1e-5)  # t(0.99, 4): a reference value
    assert "between-run sd 10.0 % from 2 case(s)' baseline runs, 4 dof, 3 run(s) of this case" in source


def test_with_no_two_run_case_the_assumed_sd_is_used_and_the_floor_always_holds():
    width, source = log_tolerance([100.0], 1, RelativeThreshold(rel_tol=0.0, alpha=0.01, assumed_run_sd=0.12))
    assert width == pytest.approx(2.326348 * 0.12 * math.sqrt(2), rel=1e-4) and "assumed" in source
    floor, _ = log_tolerance([100.0, 100.0, 100.0], 1, RelativeThreshold(rel_tol=0.05), RunNoise(0.0, 2, 1))
    assert floor == pytest.approx(-math.log(0.95))


def _verdict(base_runs, cur_runs, thresholds=T, acc=0.9):
    from test_compare import summary

    baseline = Baseline(suite="s", hardware_key="cpu", cases={"c": entry_from_summary(summary(runs=base_runs))})
    [v] = check({"c": summary(acc=(acc,), runs=cur_runs)}, baseline, {"c": thresholds})
    return v


def test_a_slower_busier_machine_is_machine_differs_and_the_gate_passes():
    v = _verdict(BASE_RUNS, [run(train=45.0, gemm=48.0)])  # everything ~2x slower, the code unchanged
    speed = v.check_for("train_throughput")
    assert speed.status is Status.MACHINE_DIFFERS and "not as fast as when blessed" in speed.reason
    assert v.status is Status.PASS and "speed not judged" in v.reason and exit_code([v]) == 0


def test_a_real_slowdown_on_the_same_machine_regresses():
    v = _verdict(BASE_RUNS, [run(train=50.0, gemm=101.0)])  # the training step 2x slower, the machine as fast
    assert v.status is Status.REGRESSED and v.check_for("train_throughput").status is Status.REGRESSED
    assert exit_code([v]) == 1
    assert _verdict(BASE_RUNS, [run(train=97.0, gemm=101.0)]).check_for("train_throughput").status is Status.NOISE


def test_normalise_policy_divides_by_the_calibration_and_still_catches_a_real_slowdown():
    normalise = Thresholds(throughput=ThroughputThresholds(beyond_band="normalise"))
    same_code = _verdict(BASE_RUNS, [run(train=50.0, gemm=50.0)], normalise).check_for("train_throughput")
    assert same_code.status is Status.PASS and "normalised by GEMM GFLOP/s ×0.50" in same_code.reason
    slower = _verdict(BASE_RUNS, [run(train=25.0, gemm=50.0)], normalise).check_for("train_throughput")
    assert slower.status is Status.REGRESSED
    other = _verdict(BASE_RUNS, [run(train=25.0, digest="x")], normalise).check_for("train_throughput")
    assert other.status is Status.MACHINE_DIFFERS  # another machine is never normalised


def _with_data(r, data):
    return r.model_copy(update={"data_samples_per_s": data})


def test_a_data_path_twice_as_slow_regresses_although_train_throughput_barely_moves():
    base = [_with_data(r, 1000.0 + i) for i, r in enumerate(BASE_RUNS)]
    v = _verdict(base, [_with_data(run(train=97.0, gemm=100.0), 500.0)])
    assert v.check_for("train_throughput").status is Status.NOISE
    data = v.check_for("data_throughput")
    assert data.status is Status.REGRESSED and "data_throughput -50.0%" in data.reason and v.status is Status.REGRESSED
    assert _verdict(base, [_with_data(run(gemm=100.0), 990.0)]).check_for("data_throughput").status is Status.NOISE


def test_a_baseline_that_never_timed_the_data_path_reads_as_before():
    v = _verdict(BASE_RUNS, [_with_data(run(gemm=100.0), 500.0)])
    assert [c.metric for c in v.checks if "throughput" in c.metric] == ["train_throughput", "eval_throughput"]
    busy = _verdict([_with_data(r, 1000.0) for r in BASE_RUNS], [run(train=45.0, gemm=48.0)])
    assert busy.check_for("data_throughput").status is Status.MACHINE_DIFFERS


def test_memory_needs_the_fingerprint_not_the_calibration():
    busy = _verdict(BASE_RUNS, [run(gemm=40.0, peak=900.0)]).check_for("peak_memory")
    assert busy.status is Status.REGRESSED
    other = _verdict(BASE_RUNS, [run(digest="x", peak=900.0)]).check_for("peak_memory")
    assert other.status is Status.MACHINE_DIFFERS


# --- --baseline refusals ----------------------------------------------------------------------


def test_an_explicit_baseline_of_another_suite_is_refused_naming_both(tmp_path):
    path = tmp_path / "b.json"
    path.write_text(Baseline(suite="cifar10", hardware_key="cpu").to_json())
    with pytest.raises(SftbenchError, match="is for suite 'cifar10', not 'quickstart'"):
        pick_baseline(path, tmp_path, "quickstart", "cpu")


def test_an_explicit_baseline_sharing_no_case_is_refused():
    from test_compare import summary

    baseline = Baseline(suite="s", hardware_key="cpu", cases={"old-case": entry_from_summary(summary())})
    with pytest.raises(SftbenchError, match="holds none of this run's 1 case"):
        ensure_covers(baseline, ["new-case"], "s")
    ensure_covers(baseline, ["old-case", "new-case"], "s")  # one shared case is enough


def test_reports_say_speed_was_not_judged_and_why():
    import io

    from rich.console import Console

    from sftbench.report.verdicts import markdown, print_verdicts

    verdicts = [_verdict(BASE_RUNS, [run(train=45.0, gemm=48.0)])]
    text = markdown(verdicts, "check")
    assert "| not judged |" in text
    assert "speed MACHINE-DIFFERS on 1 case(s), neither a pass nor a regression: speed not judged: the machine is " \
           "not as fast as when blessed: GEMM GFLOP/s 48.0 now vs 100.0 at bless (-52 %)" in text
    buffer = io.StringIO()
    print_verdicts(Console(file=buffer, width=200, color_system=None), verdicts, "t")
    assert "not judged" in buffer.getvalue() and "1 PASS" in buffer.getvalue()

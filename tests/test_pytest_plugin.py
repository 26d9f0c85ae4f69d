"""The pytest plugin, driven by pytest's own pytester."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from sftbench.results.environment import hardware_key
from sftbench.results.record import PerExample

pytest_plugins = ["pytester"]

SUITE = {
    "name": "tiny",
    "defaults": {"epochs": 2, "batch_size": 16, "image_size": 32, "seeds": [0]},  # 2 timed steps after warm-up
    # millisecond-long tiny runs: speed and memory are noise here; accuracy is what these tests judge
    "thresholds": {"throughput": {"rel_tol": 100.0}, "memory": {"rel_tol": 100.0}},
    "matrix": {"backbones": [{"name": "test_efficientnet", "weights": "random"}],
               "datasets": [{"name": "synthetic", "options": {"train": 48, "test": 16, "size": 16}}],
               "strategies": ["linear_probe", "full"]},
}


@pytest.fixture
def suite_dir(pytester: pytest.Pytester) -> Path:
    bench = pytester.path / "benchmarks"
    bench.mkdir()
    (bench / "tiny.yaml").write_text(yaml.safe_dump(SUITE))
    return bench


HW = hardware_key(torch.device("cpu"))  # baselines are per hardware key


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "--sftbench-device", "cpu", *args)


def test_collects_one_item_per_case_with_readable_ids(pytester, suite_dir):
    # the suite's own order (pytest-randomly would shuffle it, so it is kept out of this subprocess)
    result = pytester.runpytest_subprocess("-p", "no:randomly", "--collect-only", "-q", "benchmarks/tiny.yaml",
                                           "--sftbench-seeds", "0,1")
    result.stdout.fnmatch_lines([
        "benchmarks/tiny.yaml::tiny::test_efficientnet-random-synthetic-linear_probe-seed0",
        "benchmarks/tiny.yaml::tiny::test_efficientnet-random-synthetic-linear_probe-seed1",
        "benchmarks/tiny.yaml::tiny::test_efficientnet-random-synthetic-full-seed0",
        "benchmarks/tiny.yaml::tiny::test_efficientnet-random-synthetic-full-seed1",
    ])


def test_k_and_m_select_cases(pytester, suite_dir):
    result = pytester.runpytest_subprocess("--collect-only", "-q", "benchmarks/", "-k", "full")
    assert "2 deselected" not in result.stdout.str()
    result.stdout.fnmatch_lines(["*full-seed0", "*1/2 tests collected (1 deselected)*"])
    result = pytester.runpytest_subprocess("--collect-only", "-q", "benchmarks/", "-m", "strategy_linear_probe")
    result.stdout.fnmatch_lines(["*linear_probe-seed0", "*1/2 tests collected (1 deselected)*"])


def test_new_cases_pass_then_a_degraded_baseline_fails_with_the_verdict(pytester, suite_dir):
    result = run(pytester, "benchmarks/tiny.yaml", "--sftbench-update-baselines")
    result.assert_outcomes(passed=2)
    baseline = pytester.path / "baselines" / "tiny" / f"{HW}.json"
    assert baseline.exists() and len(list((pytester.path / "results" / "tiny").glob("pytest-*.jsonl"))) == 1
    assert run(pytester, "benchmarks/tiny.yaml").ret == 0  # unchanged rerun: deterministic, passes
    data = json.loads(baseline.read_text())
    case = data["cases"]["test_efficientnet-random-synthetic-full"]
    bits = case["per_example"]["0"]  # the baseline claims every test example right
    bits["correct"] = PerExample.from_bools([True] * bits["n"], bits["test_digest"]).correct
    case["accuracy"]["values"], case["accuracy"]["mean"] = {"0": 1.0}, 1.0
    baseline.write_text(json.dumps(data))
    result = run(pytester, "benchmarks/tiny.yaml")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*full-seed0: REGRESSED: accuracy -* pp; mcnemar (lost *no seed noise learnt*"])


def test_gpu_suite_skips_with_a_reason_without_a_gpu(pytester, suite_dir):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    (suite_dir / "gpu.yaml").write_text(yaml.safe_dump({**SUITE, "name": "gpu", "requires_gpu": True}))
    result = pytester.runpytest_subprocess("-rs", "benchmarks/gpu.yaml")
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines(["*suite 'gpu' needs a GPU (requires_gpu: true) and none is visible*"])
    # naming the device is the user's decision, as with `sftbench run --device cpu`
    explicit = pytester.runpytest_subprocess("benchmarks/gpu.yaml", "--sftbench-device", "cpu", "-k", "linear_probe")
    explicit.assert_outcomes(passed=1, deselected=1)


def test_unavailable_data_skips(pytester, suite_dir):
    data = {**SUITE, "name": "nodata", "matrix": {**SUITE["matrix"], "datasets": [{"name": "cifar100", "root": "nowhere"}]}}
    (suite_dir / "nodata.yaml").write_text(yaml.safe_dump(data))
    result = run(pytester, "-rs", "benchmarks/nodata.yaml")
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines(["*CIFAR-100 is missing or corrupt in */benchmarks/nowhere (*) and cannot be downloaded*"])  # root: beside the suite


def test_sftbench_case_fixture(pytester):
    pytester.makepyfile(test_api="""
        def test_probe(sftbench_case):
            record = sftbench_case({"name": "test_efficientnet", "weights": "random"},
                                   {"name": "synthetic", "options": {"train": 32, "test": 16}},
                                   "linear_probe", epochs=1, batch_size=8, image_size=32)
            assert record.status == "ok"
            assert record.params.trainable < record.params.total
    """)
    run(pytester).assert_outcomes(passed=1)


def test_benchmark_json_is_read_by_pytest_benchmark_compare(pytester, suite_dir):
    target = pytester.path / "bench.json"
    run(pytester, "benchmarks/tiny.yaml", "--sftbench-benchmark-json", str(target)).assert_outcomes(passed=2)
    document = json.loads(target.read_text())
    full = next(b for b in document["benchmarks"] if b["name"].endswith("-full"))
    assert full["fullname"] == "tiny::test_efficientnet-random-synthetic-full"
    assert full["stats"]["ops"] > 0 and full["stats"]["rounds"] == 1
    compare = subprocess.run([sys.executable, "-m", "pytest_benchmark", "compare", str(target), "--columns", "ops,mean"],
                             capture_output=True, text=True, cwd=pytester.path)
    assert compare.returncode == 0, compare.stderr
    assert "Failed to load" not in compare.stdout + compare.stderr
    assert "test_efficientnet-random-synthetic-full" in compare.stdout


def test_a_sweep_is_judged_by_its_chosen_refit_point_after_its_points_in_any_order(pytester, suite_dir):
    swept = {**SUITE, "name": "swept", "sweep": {"optimizer.lr": [0.001, 0.05]}, "select": {"refit": True},
             "matrix": {**SUITE["matrix"], "strategies": ["linear_probe"],
                        "datasets": [{"name": "synthetic", "val_fraction": 0.25,
                                      "options": {"train": 48, "test": 16, "size": 16}}]}}
    (suite_dir / "swept.yaml").write_text(yaml.safe_dump(swept))
    group = "test_efficientnet-random-synthetic-linear_probe"
    for order in ("-p", "randomly"), ("-p", "no:randomly"):  # shuffled or not, the group's item runs last
        result = run(pytester, "-v", *order, "benchmarks/swept.yaml", "--sftbench-update-baselines")
        result.assert_outcomes(passed=3)  # two points and the group
        lines = [line for line in result.stdout.lines if "PASSED" in line]
        assert f"swept::{group}-seed0 PASSED" in lines[-1], result.stdout.str()
    [baseline] = (pytester.path / "baselines" / "swept").glob("*.json")
    assert list(json.loads(baseline.read_text())["cases"]) == [group]  # the group, not its points
    records = [json.loads(line) for f in (pytester.path / "results" / "swept").glob("*.jsonl")
               for line in f.read_text().splitlines()]
    refits = [r for r in records if r["case_id"].endswith("-refit")]
    assert len(refits) == 2 and all(r["spec"]["select"]["refit_of"] in r["case_id"] for r in refits)

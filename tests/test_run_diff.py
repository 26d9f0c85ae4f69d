"""`sftbench leaderboard --compare A B`: the run-to-run diff, with paired tests and no baseline."""
from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import fake_record
from typer.testing import CliRunner

from sftbench.cli import app
from sftbench.engine import runner as runner_module
from sftbench.regression.diff import diff_runs
from sftbench.results.record import PerExample


def flat(text: str) -> str:
    return " ".join(text.split())


def seeded(seed: int, correct: np.ndarray, **changes):
    digest = "d" * 16
    return fake_record(seed=seed, run_key=f"case-seed{seed}", case_id="case", status="ok",
                       metrics={"top1": float(correct.mean())},
                       per_example=PerExample.from_bools(correct, digest).model_dump(), **changes)


def test_a_planted_per_example_drop_is_significant_and_an_unchanged_rerun_is_not():
    rng = np.random.default_rng(0)
    base = [rng.random(2000) < 0.9 for _ in range(2)]
    a = [seeded(s, base[s]) for s in (0, 1)]
    same = diff_runs(a, [seeded(s, base[s]) for s in (0, 1)])
    assert same.cases[0].test == "mcnemar" and same.cases[0].p_value == 1.0 and not same.cases[0].significant
    worse = [c.copy() for c in base]
    for c in worse:
        c[np.flatnonzero(c)[:60]] = False  # 3 points fewer right per seed
    dropped = diff_runs(a, [seeded(s, worse[s], env={"torch": "9.9.9"}) for s in (0, 1)])
    case = dropped.cases[0]
    assert case.significant and case.delta < -0.025 and case.p_value < 1e-6
    assert dropped.env_changes["torch"] == ("2.14.1+cu130", "9.9.9")


def test_without_per_example_results_the_diff_falls_back_to_seed_statistics():
    a = [fake_record(seed=s, run_key=f"c-seed{s}", case_id="c", metrics={"top1": t}) for s, t in ((0, 0.9), (1, 0.91))]
    b = [fake_record(seed=s, run_key=f"c-seed{s}", case_id="c", metrics={"top1": t},
                     throughput={"train_wall_samples_per_s": w}) for s, t, w in ((0, 0.5, 40.0), (1, 0.52, 60.0))]
    a = [r.model_copy(update={"throughput": r.throughput.model_copy(update={"train_wall_samples_per_s": 100.0})})
         for r in a]
    case = diff_runs(a, b).cases[0]
    assert case.test == "welch" and case.significant
    assert case.train_change == pytest.approx(-0.5)  # median 50 img/s against 100, on the same hardware


def _run(suite, out, run_id, seeds):
    result = CliRunner().invoke(app, ["run", "--suite", str(suite), "--device", "cpu", "--out", str(out),
                                      "--run-id", run_id, "--seeds", seeds])
    assert result.exit_code == 0, result.output


@pytest.mark.trains
def test_compare_two_runs_by_id_and_a_planted_regression(tiny_suite, write_suite, tmp_path, monkeypatch):
    tiny_suite["matrix"]["datasets"][0]["options"] = {"train": 64, "test": 400, "size": 16}
    tiny_suite["defaults"]["epochs"] = 4
    suite, out = write_suite(tiny_suite), tmp_path / "out"
    _run(suite, out, "a", "0")
    _run(suite, out, "b", "1")  # another seed: noise, not a change
    quiet = CliRunner().invoke(app, ["leaderboard", "--compare", "a", "b", "--out", str(out)])
    assert quiet.exit_code == 0, quiet.output
    assert "A = a · B = b" in flat(quiet.output) and "environment: identical" in quiet.output
    real_splits = runner_module.make_splits

    def mislabelled(raw, spec, seed):  # the planted bug: a data-loading change scrambles training labels
        splits = real_splits(raw, spec, seed)
        labels = splits.train.labels
        labels[::2] = (labels[::2] + 1) % 4
        return splits

    with monkeypatch.context() as patch:
        patch.setattr(runner_module, "make_splits", mislabelled)
        _run(suite, out, "broken", "0")
    loud = CliRunner().invoke(app, ["leaderboard", "--compare", "a", "broken", "--out", str(out), "--format", "json"])
    cases = {c["labels"]["strategy"]: c for c in json.loads(loud.output)["cases"]}
    assert cases["full"]["test"] == "mcnemar" and cases["full"]["significant"] and cases["full"]["delta"] < 0
    missing = CliRunner().invoke(app, ["leaderboard", "--compare", "a", "nope", "--out", str(out)])
    assert missing.exit_code == 2 and "--compare 'nope': no results file matches" in flat(missing.output)


def test_single_different_seeds_are_not_judged_because_seed_noise_is_unknown():
    a = [fake_record(seed=0, run_key="c-seed0", case_id="c", metrics={"top1": 0.90})]
    b = [fake_record(seed=1, run_key="c-seed1", case_id="c", metrics={"top1": 0.70})]
    case = diff_runs(a, b).cases[0]
    assert case.test == "two-proportion" and case.caveat and not case.significant


def test_a_paired_change_within_the_seed_noise_is_not_significant():
    rng = np.random.default_rng(1)
    base = [rng.random(5000) < 0.8 for _ in range(3)]
    spread = [0.0, 0.06, 0.0]  # seed 1 loses 6 % of its right answers: a seed sd of about 2.8 points
    a = [seeded(s, base[s] & (rng.random(5000) > spread[s] if spread[s] > 0 else True)) for s in range(3)]
    worse = [c.copy() for c in base]
    for c in worse:
        c[np.flatnonzero(c)[:100]] = False  # 2 points: highly significant per example, inside the seed sd
    case = diff_runs(a, [seeded(s, worse[s]) for s in range(3)]).cases[0]
    assert case.test == "mcnemar" and case.seed_sd is not None and not case.significant

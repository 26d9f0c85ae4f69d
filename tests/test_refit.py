"""`select: {refit: true}`: the point chosen on validation is retrained on train + val and scored
once on test; its refit records stand for the group, and never take part in choosing."""
from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from sftbench.cli import app
from sftbench.data.splits import load_raw, make_splits
from sftbench.engine.refit import refit_cases
from sftbench.results.sweep_choice import choices, selected
from sftbench.suite.cases import expand, refit_case
from sftbench.suite.loader import parse_suite

from conftest import fake_record

GROUP = "g-full"
SELECT = {"metric": "val_top1", "over": ["optimizer.lr"], "group": GROUP, "refit": True}


def cases_of(dataset: dict) -> list:
    data = {"name": "t", "defaults": {"seeds": [0, 1]}, "sweep": {"optimizer.lr": [0.01, 0.1]},
            "select": {"refit": True},
            "matrix": {"backbones": ["test_efficientnet"], "datasets": [dataset], "strategies": ["full"]}}
    return expand(parse_suite(data, "t.yaml"))


@pytest.mark.parametrize("dataset", [
    {"name": "synthetic", "val_fraction": 0.25, "options": {"train": 64, "test": 16}},
    {"name": "synthetic", "val_fraction": 0.25, "train_size": 40, "options": {"train": 64, "test": 16}},
    {"name": "synthetic", "val_size": 10, "options": {"train": 64, "test": 16}},
    {"name": "synthetic", "val_size": 10, "train_size": 30, "options": {"train": 64, "test": 16}},
    {"name": "synthetic", "val_size": 10, "train_size": 30, "split_seed": 3, "options": {"train": 64, "test": 16}},
])
def test_the_refit_trains_on_exactly_the_points_training_and_validation_images(dataset):
    for case in cases_of(dataset):
        raw = load_raw(case.dataset)
        point, refit = make_splits(raw, case.dataset, case.seed), make_splits(raw, refit_case(case).dataset, case.seed)
        pooled = torch.cat([point.index["train"], point.index["val"]])
        assert sorted(refit.index["train"].tolist()) == sorted(pooled.tolist())
        assert len(refit.index["val"]) == 0 and torch.equal(refit.index["test"], point.index["test"])


def test_a_refit_case_has_its_own_id_and_hash_and_names_its_point():
    case = cases_of({"name": "synthetic", "val_fraction": 0.25})[0]
    refit = refit_case(case)
    assert refit.case_id == f"{case.case_id}-refit" and refit.spec_hash != case.spec_hash
    assert refit.to_record()["select"] == {**case.to_record()["select"], "refit_of": case.case_id}
    assert case.to_record()["select"]["refit"] is True


def _rec(point: str, seed: int, val, test: float, refit: bool = False):
    case_id = f"{GROUP}-{point}" + ("-refit" if refit else "")
    select = {**SELECT, "refit_of": f"{GROUP}-{point}"} if refit else SELECT
    return fake_record(suite="sw", run_id="r1", case_id=case_id, run_key=f"{case_id}-seed{seed}", seed=seed,
                       spec_hash=f"hash-{case_id}", spec={"sweep": {"optimizer.lr": float(point[2:])}, "select": select},
                       metrics={"top1": test, "val_top1": val})


def sweep():
    """lr 0.01 wins on validation; lr 0.1 is better on test and has a (stale) refit that wins on test."""
    return [_rec("lr0.01", 0, 0.9, 0.70), _rec("lr0.01", 1, 0.9, 0.72),
            _rec("lr0.1", 0, 0.5, 0.95), _rec("lr0.1", 1, 0.5, 0.96),
            _rec("lr0.1", 0, None, 0.99, refit=True)]


def test_the_chosen_points_refit_stands_for_the_group_and_never_chooses():
    refits = [_rec("lr0.01", 0, None, 0.80, refit=True), _rec("lr0.01", 1, None, 0.82, refit=True)]
    choice = choices(sweep() + refits)[GROUP]
    assert choice.chosen == f"{GROUP}-lr0.01" and choice.refit is True
    assert f"{GROUP}-lr0.01-refit" not in choice.scores  # refit records are not points
    stand_ins = selected(sweep() + refits)
    assert [(r.case_id, r.seed, r.top1) for r in stand_ins] == [(GROUP, 0, 0.80), (GROUP, 1, 0.82)]
    assert len({r.spec_hash for r in stand_ins}) == 1 and stand_ins[0].spec_hash == choice.spec_hash


def test_without_the_chosen_points_refit_the_point_stands_and_the_choice_says_refit_is_missing():
    choice = choices(sweep())[GROUP]
    assert choice.refit is False  # only the stale refit of the other point exists
    assert [(r.case_id, r.top1) for r in selected(sweep())] == [(GROUP, 0.70), (GROUP, 0.72)]


def test_refit_cases_are_the_chosen_points_only():
    cases = cases_of({"name": "synthetic", "val_fraction": 0.25})
    records = [fake_record(case_id=c.case_id, run_key=c.run_key, seed=c.seed, spec=c.to_record(),
                           metrics={"top1": 0.5, "val_top1": 0.9 if c.train.optimizer.lr == 0.1 else 0.2}) for c in cases]
    refits = refit_cases(cases, records)
    assert [(c.case_id, c.seed) for c in refits] == [(c.case_id + "-refit", c.seed) for c in cases
                                                     if c.train.optimizer.lr == 0.1]
    assert refit_cases([refit_case(c) for c in cases], records) == []  # a refit is never refitted


@pytest.mark.trains  # the refit is a second phase of `run`: only a real run shows it runs and is reported
def test_a_run_with_refit_retrains_the_chosen_point_and_reports_it(tiny_suite, write_suite, tmp_path):
    tiny_suite["sweep"] = {"optimizer.lr": [0.001, 0.05]}
    tiny_suite["select"] = {"refit": True}
    tiny_suite["matrix"]["strategies"] = ["linear_probe"]
    path, out = write_suite(tiny_suite), tmp_path / "out"
    run = CliRunner().invoke(app, ["run", "--suite", str(path), "--out", str(out), "--run-id", "r1", "--no-preflight"])
    assert run.exit_code == 0, run.output
    assert "refit: 1 chosen point(s) retrained on train + val" in run.output
    records = [json.loads(line) for line in (out / "tiny" / "r1.jsonl").read_text().splitlines()]
    [refit] = [r for r in records if r["case_id"].endswith("-refit")]
    chosen = choices([fake_record(**r) for r in records[:2]]).popitem()[1].chosen
    assert refit["spec"]["select"]["refit_of"] == chosen and refit["metrics"]["val_top1"] is None
    assert refit["spec"]["dataset"]["val_fraction"] == 0.0
    board = CliRunner().invoke(app, ["leaderboard", "--suite", str(path), "--out", str(out)])
    assert "refit on train + val" in " ".join(board.output.split()), board.output


def test_a_choice_names_its_metric_keys_and_the_whole_sweeps_digest():
    import hashlib

    one = [_rec("lr0.01", 0, 0.9, 0.70)]  # a group of a single record still chooses
    choice = choices(one)[GROUP]
    assert (choice.metric, choice.over, choice.chosen, choice.chosen_point) == (
        "val_top1", ["optimizer.lr"], f"{GROUP}-lr0.01", {"optimizer.lr": 0.01})
    hashes = sorted({r.spec_hash for r in sweep() if "refit_of" not in r.spec["select"]})
    assert len(hashes) == 2  # one per point; the refit's own hash is not part of the sweep's
    assert choices(sweep())[GROUP].spec_hash == hashlib.sha256(" ".join(hashes).encode()).hexdigest()[:16]
    unscored = choices([_rec("lr0.01", 0, None, 0.7)])[GROUP]
    assert unscored.chosen is None and unscored.scores == {f"{GROUP}-lr0.01": (None, 0)}
    failed = _rec("lr0.01", 0, 0.9, 0.7).model_copy(update={"metrics": None})
    assert choices([failed, _rec("lr0.1", 0, 0.5, 0.9)])[GROUP].scores[f"{GROUP}-lr0.01"] == (None, 0)

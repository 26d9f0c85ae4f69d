"""Sweeps in a suite: the product of training and strategy values, readable ids, per-point hashes,
`depth` resolved from the backbone's own stages, and bad sweeps refused in one sentence before
anything trains."""
from __future__ import annotations

import pytest
from typer.testing import CliRunner

from sftbench.cli import app
from sftbench.errors import ConfigError
from sftbench.suite.cases import expand
from sftbench.suite.loader import parse_suite

SRC = "benchmarks/x.yaml"
# test_efficientnet's stages from timm's coarse group_matcher, read off the model by hand:
# conv_stem+bn1, blocks.0 .. blocks.4 (conv_head and bn2 join the last): six
TEST_EFFICIENTNET_STAGES = 6


def suite(strategies=("full",), backbones=("test_efficientnet",), **changes):
    data = {"name": "t", "defaults": {"seeds": [0]},
            "matrix": {"backbones": list(backbones), "datasets": ["synthetic"], "strategies": list(strategies)}}
    data.update(changes)
    return data


def ids(data) -> list[str]:
    return [case.case_id for case in expand(parse_suite(data, SRC))]


def error_of(data) -> str:
    with pytest.raises(ConfigError) as info:
        parse_suite(data, SRC)
    return str(info.value)


def test_a_learning_rate_by_k_sweep_expands_to_the_product_with_readable_ids():
    data = suite(strategies=[{"name": "last_k", "sweep": {"k": [1, 2, 3]}}],
                 sweep={"optimizer.lr": [0.003, 0.01, 0.03], "optimizer.weight_decay": [0.0, 1e-4]})
    got = ids(data)
    assert len(got) == 3 * 3 * 2
    assert got[:3] == ["test_efficientnet-synthetic-last_k-k1-lr0.003-wd0",
                       "test_efficientnet-synthetic-last_k-k1-lr0.003-wd0.0001",
                       "test_efficientnet-synthetic-last_k-k1-lr0.01-wd0"]
    assert got[-1] == "test_efficientnet-synthetic-last_k-k3-lr0.03-wd0.0001"
    cases = expand(parse_suite(data, SRC))
    assert len({c.spec_hash for c in cases}) == 18  # every point is its own case
    point = next(c for c in cases if c.case_id.endswith("k2-lr0.01-wd0.0001"))
    assert (point.train.optimizer.lr, point.train.optimizer.weight_decay, point.strategy.params) == (0.01, 1e-4, {"k": 2})
    assert point.to_record()["sweep"] == {"optimizer.lr": 0.01, "optimizer.weight_decay": 1e-4}


def test_a_sweep_point_hashes_like_the_same_case_written_out_and_plain_suites_are_unchanged():
    swept = expand(parse_suite(suite(sweep={"optimizer.lr": [0.03]}), SRC))[0]
    written = expand(parse_suite(suite(defaults={"seeds": [0], "optimizer": {"lr": 0.03}}), SRC))[0]
    assert swept.spec_hash == written.spec_hash and swept.case_id == written.case_id + "-lr0.03"
    plain = expand(parse_suite(suite(), SRC))[0]
    assert plain.case_id == "test_efficientnet-synthetic-full" and "sweep" not in plain.to_record()


def test_depth_resolves_to_the_backbones_own_stages():
    assert ids(suite(strategies=["depth"])) == (
        ["test_efficientnet-synthetic-linear_probe"]
        + [f"test_efficientnet-synthetic-last_k-k{k}" for k in range(1, TEST_EFFICIENTNET_STAGES)]
        + ["test_efficientnet-synthetic-full"])
    cut = ids(suite(strategies=["depth"], backbones=[{"name": "test_efficientnet", "stage": 2}]))
    assert cut == ["test_efficientnet-stage2-synthetic-linear_probe", "test_efficientnet-stage2-synthetic-last_k-k1",
                   "test_efficientnet-stage2-synthetic-last_k-k2", "test_efficientnet-stage2-synthetic-full"]
    every = ids(suite(strategies=[{"name": "last_k", "sweep": {"k": "all"}}]))
    assert every == [f"test_efficientnet-synthetic-last_k-k{k}" for k in range(1, TEST_EFFICIENTNET_STAGES + 1)]


def test_an_override_sweep_replaces_the_suites_values_for_its_cases():
    data = suite(strategies=["linear_probe", "full"], sweep={"optimizer.lr": [0.001, 0.01]},
                 overrides=[{"match": {"strategy": "linear_probe"}, "sweep": {"optimizer.lr": [0.1, 0.3]}}])
    assert ids(data) == ["test_efficientnet-synthetic-linear_probe-lr0.1", "test_efficientnet-synthetic-linear_probe-lr0.3",
                         "test_efficientnet-synthetic-full-lr0.001", "test_efficientnet-synthetic-full-lr0.01"]


@pytest.mark.parametrize("data, expected", [
    (suite(sweep={"optimizer.lr": []}),
     "benchmarks/x.yaml: sweep: sweep key 'optimizer.lr' takes a non-empty list of values, not []"),
    (suite(sweep={"optimizer.lrr": [0.1]}),
     "benchmarks/x.yaml: sweep.optimizer.lrr: no training hyperparameter is called 'optimizer.lrr' "
     "(did you mean 'optimizer.lr' or"),
    (suite(sweep={"optimizer.lr": [0.1, "fast"]}),
     "benchmarks/x.yaml: sweep.optimizer.lr: 'fast' is invalid: input should be a valid number"),
    (suite(sweep={"epochs": [1, 1]}),
     "benchmarks/x.yaml: sweep: sweep key 'epochs' lists a value twice ([1, 1]); list each value once"),
    (suite(sweep={"seeds": [[0], [1]]}),
     "benchmarks/x.yaml: sweep.seeds: no training hyperparameter is called 'seeds'"),
    (suite(overrides=[{"match": {"strategy": "full"}, "sweep": {"optimizer.lr": [-1.0]}}]),
     "benchmarks/x.yaml: overrides[0].sweep.optimizer.lr: -1.0 is invalid: input should be greater than 0"),
    (suite(strategies=[{"name": "last_k", "sweep": {"k": [2, 9]}}]),
     "benchmarks/x.yaml: strategy 'last_k-k9': k=9 exceeds the 6 stages of backbone 'test_efficientnet'; "
     "use 1 <= k <= 6"),
    (suite(strategies=[{"name": "last_k", "sweep": {"kk": [2]}}]),
     "benchmarks/x.yaml: matrix.strategies[0]: sweep kk=2: strategy 'last_k': params.kk: unknown parameter "
     "(did you mean 'k'?)"),
    (suite(strategies=[{"name": "last_k", "sweep": {"k": ["two"]}}]),
     "benchmarks/x.yaml: matrix.strategies[0]: sweep k='two': strategy 'last_k': params.k: 'two' is invalid"),
    (suite(strategies=[{"name": "llrd", "sweep": {"decay": "all"}}]),
     "benchmarks/x.yaml: strategy 'llrd' sweep decay: 'all' means every stage and works for last_k's k only; "
     "list the values instead"),
    (suite(strategies=[{"name": "depth", "params": {"k": 2}}]),
     "benchmarks/x.yaml: matrix.strategies[0]: strategy 'depth' takes no params, sweep or id"),
])
def test_bad_sweeps_are_refused_in_one_sentence_naming_the_key(data, expected):
    message = error_of(data)
    assert message.startswith(expected) and "\n" not in message, message


def test_the_cli_refuses_a_bad_sweep_before_training_with_exit_2(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: bad\nmatrix: {backbones: [test_efficientnet], datasets: [synthetic], strategies: [full]}\n"
                    "sweep: {optimizer.lr: []}\n")
    result = CliRunner().invoke(app, ["run", "--suite", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and "sweep key 'optimizer.lr' takes a non-empty list" in " ".join(result.output.split())
    assert "Traceback" not in result.output and not (tmp_path / "out").exists()


# --- selection on the validation split --------------------------------------------------------------

GROUP = "lite0-mnist5k-full"


def _point(lr: float, seed: int, val: float, test: float):
    from conftest import fake_record

    case_id = f"{GROUP}-lr{lr:g}"
    return fake_record(suite="sw", run_id="r1", case_id=case_id, run_key=f"{case_id}-seed{seed}", seed=seed,
                       spec={"sweep": {"optimizer.lr": lr},
                             "select": {"metric": "val_top1", "over": ["optimizer.lr"], "group": GROUP}},
                       metrics={"top1": test, "val_top1": val})


def planted() -> list:
    """lr 0.1 is the best point on test and the worst on validation; lr 0.01 the reverse."""
    return [_point(0.01, 0, 0.95, 0.70), _point(0.01, 1, 0.93, 0.72),
            _point(0.1, 0, 0.60, 0.99), _point(0.1, 1, 0.62, 0.98),
            _point(0.03, 0, 0.90, 0.90), _point(0.03, 1, 0.91, 0.91)]


def test_selection_picks_on_validation_and_is_blind_to_test():
    from sftbench.results.sweep_choice import choices, selected

    chosen = selected(planted())
    assert {(r.case_id, r.run_key, r.top1) for r in chosen} == {(GROUP, f"{GROUP}-seed0", 0.70),
                                                                 (GROUP, f"{GROUP}-seed1", 0.72)}
    choice = choices(planted())[GROUP]
    assert choice.chosen == f"{GROUP}-lr0.01" and choice.chosen_point == {"optimizer.lr": 0.01}
    assert choice.scores[f"{GROUP}-lr0.1"] == (pytest.approx(0.61), 2)
    rng = __import__("random").Random(0)
    for _ in range(20):  # any test scores at all: the same point is chosen
        shuffled = [r.model_copy(update={"metrics": r.metrics.model_copy(update={"top1": rng.random()})})
                    for r in planted()]
        assert choices(shuffled)[GROUP].chosen == f"{GROUP}-lr0.01"
    assert len(selected(planted(), all_points=True)) == 6


def test_the_leaderboard_reports_the_chosen_point_and_all_points_on_request(tmp_path):
    import json

    path = tmp_path / "r1.jsonl"
    path.write_text("".join(json.dumps(r.to_json_dict()) + "\n" for r in planted()))
    runner = CliRunner()
    board = json.loads(runner.invoke(app, ["leaderboard", str(path), "--format", "json"]).output)
    assert [(row["case_id"], round(row["top1_mean"], 2)) for row in board] == [(GROUP, 0.71)]
    every = json.loads(runner.invoke(app, ["leaderboard", str(path), "--format", "json", "--all-points"]).output)
    assert sorted(row["case_id"] for row in every) == [f"{GROUP}-lr0.01", f"{GROUP}-lr0.03", f"{GROUP}-lr0.1"]
    table = " ".join(runner.invoke(app, ["leaderboard", str(path)]).output.split())
    assert "optimizer.lr=0.01" in table and "*lr0.01 94.00 (2)" in table


def test_a_suite_with_select_marks_each_records_group_and_the_keys_chosen_over():
    data = suite(strategies=[{"name": "last_k", "sweep": {"k": [1, 2]}}],
                 sweep={"optimizer.lr": [0.01, 0.1], "epochs": [1, 2]}, select={"over": ["optimizer.lr"]})
    data["matrix"]["datasets"] = [{"name": "synthetic", "val_fraction": 0.2}]
    case = next(c for c in expand(parse_suite(data, SRC)) if c.case_id.endswith("last_k-k2-ep2-lr0.1"))
    assert case.to_record()["select"] == {"metric": "val_top1", "over": ["optimizer.lr"],
                                          "group": "test_efficientnet-synthetic-last_k-k2-ep2"}


@pytest.mark.parametrize("select, dataset, expected", [
    ({"metric": "top1"}, "synthetic",
     "benchmarks/x.yaml: select.metric: metric 'top1' is scored on the test split, which never picks a sweep point; "
     "use val_top1"),
    ({"metric": "val_f1"}, "synthetic", "benchmarks/x.yaml: select.metric: no split provides a metric 'val_f1'"),
    ({"over": ["optimizer.momentum"]}, "synthetic",
     "benchmarks/x.yaml: select.over: 'optimizer.momentum' is not swept by any case"),
    ({}, {"name": "synthetic", "val_fraction": 0.0},
     "benchmarks/x.yaml: select.metric: val_top1 needs a validation split, but dataset 'synthetic' has none"),
    ({"refit": True}, {"name": "synthetic", "shots": 2, "val_size": 8},
     "benchmarks/x.yaml: select.refit: dataset 'synthetic' draws `shots` per class, whose training and validation "
     "images do not make one pool to retrain on"),
])
def test_bad_selections_are_refused_in_one_sentence(select, dataset, expected):
    data = suite(sweep={"optimizer.lr": [0.01, 0.1]}, select=select)
    data["matrix"]["datasets"] = [dataset]
    message = error_of(data)
    assert message.startswith(expected) and "\n" not in message, message


@pytest.mark.trains
def test_a_swept_suite_runs_and_its_chosen_points_are_blessed_and_checked(tiny_suite, write_suite, tmp_path):
    import json

    tiny_suite["sweep"] = {"optimizer.lr": [0.001, 0.05]}
    tiny_suite["select"] = {"metric": "val_top1"}
    path = write_suite(tiny_suite)
    out, baselines = tmp_path / "out", tmp_path / "baselines"
    runner = CliRunner()
    run = runner.invoke(app, ["run", "--suite", str(path), "--out", str(out), "--run-id", "r1", "--no-preflight"])
    assert run.exit_code == 0, run.output
    records = [json.loads(line) for line in (out / "tiny" / "r1.jsonl").read_text().splitlines()]
    assert len(records) == 4 and all(r["spec"]["select"]["group"] == r["case_id"].rsplit("-lr", 1)[0] for r in records)
    board = json.loads(runner.invoke(app, ["leaderboard", "--suite", str(path), "--out", str(out),
                                           "--format", "json"]).output)
    groups = sorted(row["case_id"] for row in board)
    assert groups == ["test_efficientnet-random-synthetic-full", "test_efficientnet-random-synthetic-linear_probe"]
    bless = runner.invoke(app, ["baseline", "update", "--suite", str(path), "--out", str(out),
                                "--baselines-dir", str(baselines)])
    assert bless.exit_code == 0, bless.output
    blessed_file = next((baselines / "tiny").glob("*.json"))
    assert sorted(json.loads(blessed_file.read_text())["cases"]) == groups
    check = runner.invoke(app, ["check", "--suite", str(path), "--out", str(out), "--baseline", str(blessed_file),
                                "--json", str(tmp_path / "v.json")])
    assert check.exit_code == 0, check.output
    verdicts = json.loads((tmp_path / "v.json").read_text())
    assert sorted(v["case_id"] for v in verdicts["verdicts"]) == groups
    _a_moved_choice_is_reported_and_a_changed_sweep_is_incomparable(runner, path, out, blessed_file, tmp_path)


def _a_moved_choice_is_reported_and_a_changed_sweep_is_incomparable(runner, path, out, blessed_file, tmp_path):
    import json

    blessed = {k: v["sweep_point"] for k, v in json.loads(blessed_file.read_text())["cases"].items()}
    assert all(point.keys() == {"optimizer.lr"} and point["optimizer.lr"] in (0.001, 0.05) for point in blessed.values())
    records = [json.loads(line) for line in (out / "tiny" / "r1.jsonl").read_text().splitlines()]
    for record in records:  # the learning rate not chosen at bless time is now the better on validation
        was_chosen = record["spec"]["sweep"] == blessed[record["spec"]["select"]["group"]]
        record["metrics"]["val_top1"] = 0.0 if was_chosen else 1.0
    moved = tmp_path / "moved.jsonl"
    moved.write_text("".join(json.dumps(r) + "\n" for r in records))
    check = runner.invoke(app, ["check", "--results", str(moved), "--suite", str(path), "--baseline", str(blessed_file), "--json", str(tmp_path / "m.json")])
    assert (tmp_path / "m.json").exists(), check.output
    verdicts = json.loads((tmp_path / "m.json").read_text())["verdicts"]
    assert {v["status"] for v in verdicts} & {"INCOMPARABLE", "NEW", "MISSING"} == set(), check.output
    for verdict in verdicts:
        old = blessed[verdict["case_id"]]["optimizer.lr"]
        new = 0.001 if old == 0.05 else 0.05
        assert verdict["reason"].endswith(f"; the chosen sweep point moved from optimizer.lr={old} (baseline) to "
                                          f"optimizer.lr={new}"), verdict["reason"]
    one_point = tmp_path / "one_point.jsonl"  # the same groups from a sweep of one learning rate: a new definition
    one_point.write_text("".join(json.dumps(r) + "\n" for r in records if r["spec"]["sweep"]["optimizer.lr"] == 0.001))
    runner.invoke(app, ["check", "--results", str(one_point), "--suite", str(path), "--baseline", str(blessed_file), "--json", str(tmp_path / "o.json")])
    assert {v["status"] for v in json.loads((tmp_path / "o.json").read_text())["verdicts"]} == {"INCOMPARABLE"}

"""The depth curve (issue 25): top-1 from the probe through last_k to full on the backbone's own stages,
the one-line answer (shallowest depth within 2 standard errors of the best, against full), the
table, the plot, and the chosen sweep point standing for each depth. Figures are worked by hand
below each planted curve."""
from __future__ import annotations

import json

import pytest
from conftest import fake_record
from typer.testing import CliRunner

from sftbench.cli.app import app
from sftbench.report.depth import answer, depth_curves

BACKBONE = "test_efficientnet-random-synthetic"  # test_efficientnet: 6 stages (test_sweeps checks the count)

# strategy label, spec strategy, trainable fraction, top-1 per seed, train seconds
PLANTED = [
    ("linear_probe", {"name": "linear_probe", "params": {}}, 0.01, (0.70, 0.72, 0.71), 1.0),
    ("last_k-k1", {"name": "last_k", "params": {"k": 1}}, 0.05, (0.80, 0.82, 0.81), 1.5),
    ("last_k-k2", {"name": "last_k", "params": {"k": 2}}, 0.15, (0.85, 0.86, 0.84), 2.0),
    ("last_k-k3", {"name": "last_k", "params": {"k": 3}}, 0.30, (0.895, 0.905, 0.90), 3.0),
    ("bitfit", {"name": "bitfit", "params": {}}, 0.02, (0.75, 0.76, 0.77), 4.0),
    ("last_k-k5", {"name": "last_k", "params": {"k": 5}}, 0.80, (0.90, 0.91, 0.92), 8.0),
    ("full", {"name": "full", "params": {}}, 1.00, (0.912, 0.902, 0.922), 10.0),
]


def _records(rows=PLANTED, suffix: str = "", extra_spec: dict | None = None) -> list:
    out = []
    for label, strategy, fraction, values, train_s in rows:
        case_id = f"{BACKBONE}-{label}{suffix}"
        for seed, top1 in enumerate(values):
            out.append(fake_record(
                run_id="r1", case_id=case_id, run_key=f"{case_id}-seed{seed}", seed=seed,
                labels={"strategy": label}, spec={"strategy": strategy, **(extra_spec or {})},
                params={"trainable_fraction": fraction}, timings_s={"train": train_s},
                metrics={"top1": top1, "val_top1": 0.5}))
    return out


def test_the_curve_orders_depths_by_trainable_fraction_and_places_other_strategies_beside_them():
    (curve,) = depth_curves(_records())
    assert (curve.backbone, curve.dataset, curve.stages) == ("test_efficientnet-random", "synthetic", 6)
    assert [(p.label, p.depth) for p in curve.points] == [
        ("linear_probe", 0), ("bitfit", None), ("last_k-k1", 1), ("last_k-k2", 2), ("last_k-k3", 3),
        ("last_k-k5", 5), ("full", 6)]
    assert curve.at_depth(3).mean == pytest.approx(0.90) and curve.at_depth(3).sd == pytest.approx(0.005)


def test_the_answer_is_the_shallowest_depth_within_two_standard_errors_of_the_best():
    # best: full, 91.2 (sd 1.0, se 1/√3); k3: 90.0 (sd 0.5, se 0.5/√3); 2·√(se3² + se6²) = 1.29 pp ≥ 1.2 pp
    # k2: 85.0, 6.2 pp below: outside. k3 − full = −1.2 ± 0.65 pp, train time 3 s of 10 s
    (curve,) = depth_curves(_records())
    assert answer(curve) == ("test_efficientnet-random on synthetic: fine-tune the last 3 of 6 stages: "
                             "-1.2 ± 0.6 pp against full at 30 % of its train time")


def test_when_only_full_reaches_the_best_the_answer_says_nothing_shallower_is_within_noise():
    rows = [r for r in PLANTED if r[0] in ("linear_probe", "last_k-k2", "full")]
    (curve,) = depth_curves(_records(rows))
    assert answer(curve) == ("test_efficientnet-random on synthetic: fine-tune every stage (full); nothing "
                             "shallower is within the seed noise of the best")
    probe_wins = [(label, s, f, tuple(1.0 - v for v in values), t) for label, s, f, values, t in rows]
    (curve,) = depth_curves(_records(probe_wins))
    # probe 29.0 against full 8.8, both sd 1.0 over 3 seeds: ± √2/√3 = 0.82 pp; 1 s of 10 s
    assert answer(curve) == ("test_efficientnet-random on synthetic: fine-tune a linear probe (no stage): "
                             "+20.2 ± 0.8 pp against full at 10 % of its train time")


def test_one_seed_per_depth_asks_for_a_second_seed_rather_than_guessing():
    rows = [(label, s, f, values[:1], t) for label, s, f, values, t in PLANTED]
    (curve,) = depth_curves(_records(rows))
    assert answer(curve) == ("test_efficientnet-random on synthetic: run at least two seeds per depth to tell "
                             "depths apart")


def _write(tmp_path, records) -> str:
    path = tmp_path / "r1.jsonl"
    path.write_text("".join(json.dumps(r.to_json_dict()) + "\n" for r in records))
    return str(path)


def test_leaderboard_depth_prints_the_chosen_points_table_and_plots_it(tmp_path):
    rows = [r for r in PLANTED if r[0] != "full"]
    full = PLANTED[-1]
    group = f"{BACKBONE}-full"

    def full_point(lr: float, val: float, values: tuple) -> list:
        records = _records([(full[0], full[1], full[2], values, full[4])], suffix=f"-lr{lr:g}",
                           extra_spec={"sweep": {"optimizer.lr": lr},
                                       "select": {"metric": "val_top1", "over": ["optimizer.lr"], "group": group}})
        return [r.model_copy(update={"metrics": r.metrics.model_copy(update={"val_top1": val})}) for r in records]

    # lr 0.1 is far better on test but worse on validation: the depth curve's full is lr 0.01's 91.2
    records = _records(rows) + full_point(0.01, 0.9, full[3]) + full_point(0.1, 0.4, (0.99, 0.99, 0.99))
    plot = tmp_path / "depth.png"
    result = CliRunner().invoke(app, ["leaderboard", _write(tmp_path, records), "--depth", "--format", "markdown",
                                      "--plot-depth", str(plot)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "| 6 | full | 100.0 % | 91.20 ± 1.00 (3) | 10.0 | 100 % |" in lines
    assert "| 3 | last_k-k3 | 30.0 % | 90.00 ± 0.50 (3) | 3.0 | 30 % |" in lines
    assert "| - | bitfit | 2.0 % | 76.00 ± 1.00 (3) | 4.0 | 40 % |" in lines
    assert any(line.startswith("test_efficientnet-random on synthetic: fine-tune the last 3 of 6 stages") for line in lines)
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and plot.stat().st_size > 10_000
    every = CliRunner().invoke(app, ["leaderboard", _write(tmp_path, records), "--depth", "--all-points",
                                     "--format", "markdown"])
    assert "| 6 | full-lr0.1 | 100.0 % | 99.00 ± 0.00 (3) | 10.0 | 100 % |" in every.output.splitlines()


def test_leaderboard_depth_without_two_depths_is_one_sentence_and_exit_2(tmp_path):
    rows = [r for r in PLANTED if r[0] in ("full", "bitfit")]
    result = CliRunner().invoke(app, ["leaderboard", _write(tmp_path, _records(rows)), "--depth"])
    assert result.exit_code == 2
    assert result.output.strip().startswith("error: no backbone × dataset in these results has two depths")
    assert "Traceback" not in result.output

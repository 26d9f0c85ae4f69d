from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pandas as pd
import pytest
from rich.console import Console
from typer.testing import CliRunner

from sftbench.cli import app
from sftbench.report.board import leaderboard_frame, pareto_front, rank
from sftbench.report.leaderboard import markdown_board, print_board
from sftbench.results.record import Record

GOLDEN = Path(__file__).parent / "golden"


def record(backbone="resnet50", strategy="full", seed=0, top1=0.9, train=100.0, run="r1", weights="pretrained",
           finished="2026-11-29T01:00:00+00:00", status="ok", dataset="cifar10"):
    label = backbone if weights == "pretrained" else f"{backbone}-random"
    case_id = f"{label}-{dataset}-{strategy}"
    r = {"schema_version": 1, "suite": "s", "run_id": run, "case_id": case_id, "run_key": f"{case_id}-seed{seed}",
         "seed": seed, "spec_hash": "h", "status": status, "finished_at": finished, "started_at": finished,
         "labels": {"backbone": label, "dataset": dataset, "strategy": strategy},
         "spec": {"backbone": {"name": backbone, "weights": weights}},
         "env": {"hardware_key": "cpu"}, "history": [{"epoch": 1, "val_top1": top1 - 0.05}, {"epoch": 2, "val_top1": top1}]}
    if status == "ok":
        r.update(metrics={"top1": top1, "macro_f1": top1, "final_train_loss": 0.1}, memory={"peak_mb": 1000.0, "kind": "x"},
                 timings_s={"total": 12.5},
                 throughput={"train_samples_per_s": train, "eval_samples_per_s": 4 * train, "train_path": "images"},
                 params={"trainable_fraction": 1.0 if strategy == "full" else 0.01, "total": 25_557_032,
                         "trainable": 1})
    else:
        r["error"] = {"type": "OutOfMemoryError", "message": "CUDA out of memory", "phase": "train"}
    return Record.model_validate(r)


def hand_built() -> list[Record]:
    return [
        record("resnet50", "full", 0, 0.95, 100.0), record("resnet50", "full", 1, 0.93, 110.0),
        record("resnet50", "linear_probe", 0, 0.85, 900.0),
        record("resnet50", "linear_probe", 0, 0.60, 900.0, weights="random"),
        record("vit_small", "full", 0, 0.91, 80.0),  # dominated: slower and less accurate than resnet50 full
        record("convnext_tiny", "full", 0, status="failed"),
    ]


def render(width: int) -> str:
    buffer = io.StringIO()
    print_board(Console(file=buffer, width=width, color_system=None), leaderboard_frame(hand_built()), "golden")
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines()) + "\n"


@pytest.mark.parametrize("width", [80, 160])
def test_golden_leaderboard(width):
    assert render(width) == (GOLDEN / f"leaderboard_w{width}.txt").read_text()


def test_frame_values():
    board = rank(leaderboard_frame(hand_built()))
    top = board.iloc[0]
    assert top["case_id"] == "resnet50-cifar10-full" and top["n"] == 2
    assert top["top1_mean"] == pytest.approx(0.94) and top["top1_std"] == pytest.approx(0.01414, abs=1e-4)
    probe = board[board["case_id"] == "resnet50-cifar10-linear_probe"].iloc[0]
    assert probe["transfer_gain"] == pytest.approx(0.25)  # vs the random-init probe
    assert board.iloc[-1]["failed"] and board.iloc[-1]["error"] == "CUDA out of memory"


def test_pareto_front_on_known_points():
    points = pd.DataFrame({"train_samples_per_s": [1, 2, 3, 2, 1], "top1_mean": [0.9, 0.8, 0.5, 0.7, 0.95]})
    assert pareto_front(points).tolist() == [False, True, True, False, True]


def test_latest_run_per_case_and_all_runs_pooling():
    old = record("resnet50", "full", 0, 0.70, run="old", finished="2026-11-28T00:00:00+00:00")
    new = record("resnet50", "full", 0, 0.90, run="new", finished="2026-11-29T00:00:00+00:00")
    latest = leaderboard_frame([new, old]).iloc[0]
    assert latest["top1_mean"] == pytest.approx(0.90) and latest["n"] == 1
    pooled = leaderboard_frame([old, new], all_runs=True).iloc[0]
    assert pooled["top1_mean"] == pytest.approx(0.80) and pooled["n"] == 2


def test_markdown_and_csv_parse_back(tmp_path):
    board = leaderboard_frame(hand_built())
    lines = [l for l in markdown_board(board, "t").splitlines() if l.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = [[c.strip() for c in l.strip("|").split("|")] for l in lines[2:]]
    assert header[:3] == ["#", "case", "top-1 % (±sd, n)"] and len(rows) == 5
    assert rows[0][1] == "resnet50-cifar10-full" and rows[0][2] == "94.00±1.41 (2)"
    path = tmp_path / "r.jsonl"
    path.write_text("".join(json.dumps(r.to_json_dict()) + "\n" for r in hand_built()))
    out = CliRunner().invoke(app, ["leaderboard", str(path), "--format", "csv"]).output
    parsed = list(csv.DictReader(io.StringIO(out)))
    assert parsed[0]["case_id"] == "resnet50-cifar10-full" and float(parsed[0]["top1_mean"]) == pytest.approx(0.94)
    as_json = json.loads(CliRunner().invoke(app, ["leaderboard", str(path), "--format", "json"]).output)
    assert [r["case_id"] for r in as_json][-1] == "convnext_tiny-cifar10-full"


def test_plots_are_valid_pngs_of_the_expected_size(tmp_path):
    from PIL import Image

    path = tmp_path / "r.jsonl"
    path.write_text("".join(json.dumps(r.to_json_dict()) + "\n" for r in hand_built()))
    result = CliRunner().invoke(app, ["leaderboard", str(path), "--plot", str(tmp_path / "p.png"),
                                      "--plot-curves", str(tmp_path / "c.png"), "--group-by", "dataset"])
    assert result.exit_code == 0, result.output
    for name in ("p.png", "c.png"):
        with Image.open(tmp_path / name) as image:
            assert image.format == "PNG" and image.size == (800, 500)


def test_leaderboard_errors_are_sentences(tmp_path):
    result = CliRunner().invoke(app, ["leaderboard", str(tmp_path), "--sort", "speed"])
    assert result.exit_code == 2 and "--sort 'speed' is unknown; use accuracy, throughput or efficiency" in result.output


def test_cached_probes_stay_off_the_pareto_front():
    points = pd.DataFrame({"train_samples_per_s": [50.0, 9e4], "top1_mean": [0.9, 0.8],
                           "train_path": ["images", "cached_features"]})
    assert pareto_front(points).tolist() == [True, False]

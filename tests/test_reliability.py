"""Hostile and corrupt files, torn lines and the one-writer lock: one sentence, exit 2, nothing lost."""
from __future__ import annotations

import json
import os
import pickle
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from conftest import FIXTURES, fake_record
from typer.testing import CliRunner

from sftbench.backbones.weights import read_state_dict
from sftbench.cli import app
from sftbench.errors import ResultsFormatError, SftbenchWarning, WeightsUnavailableError
from sftbench.results.store import Store, read_records
from sftbench.schema import BackboneSpec

RESULTS = FIXTURES / "results-v1.jsonl"  # four whole records of the tiny suite
ROOT = Path(__file__).resolve().parent.parent


def run_cli(*args: str):
    return CliRunner().invoke(app, list(args))


def flat(text: str) -> str:
    return " ".join(text.split())


# --- results files ----------------------------------------------------------------------------


def test_a_torn_last_line_is_moved_aside_and_the_results_file_stays_whole(tmp_path):
    store = Store(tmp_path / "s" / "r.jsonl")
    store.append(fake_record(run_key="a", spec_hash="h", status="ok"))
    with open(store.path, "a") as fh:
        fh.write('{"schema_version": 1, "run_key": "b", "sta')  # killed mid-write
    with pytest.warns(SftbenchWarning, match=r"r.jsonl:2: not a whole JSON record \(torn or garbled\), skipped"):
        assert [r.run_key for r in store.records()] == ["a"]
    with pytest.warns(SftbenchWarning, match=r"a torn last line \(42 bytes.*moved to r.jsonl.torn"):
        store.append(fake_record(run_key="c", spec_hash="h", status="failed"))
    assert [json.loads(line)["run_key"] for line in store.path.read_text().splitlines()] == ["a", "c"]
    assert (store.path.parent / "r.jsonl.torn").read_text() == '{"schema_version": 1, "run_key": "b", "sta\n'
    assert store.finished_keys() == {("a", "h")}


def test_a_garbled_middle_line_is_named_and_every_other_line_is_read(tmp_path):
    lines = RESULTS.read_text().splitlines()
    path = tmp_path / "r.jsonl"
    path.write_text("\n".join([lines[0], '{"run_key": "x", \x00garbage', *lines[1:]]) + "\n")
    with pytest.warns(SftbenchWarning, match=r"r.jsonl:2: not a whole JSON record") as caught:
        records = list(read_records(path))
    assert len(records) == 4 and len(caught) == 1


@pytest.mark.trains
def test_the_cli_prints_the_warning_as_one_line_and_still_ranks(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text(RESULTS.read_text() + "not json at all\n")
    done = subprocess.run([sys.executable, "-m", "sftbench", "leaderboard", str(path)], capture_output=True,
                          text=True, timeout=120, env={**os.environ, "COLUMNS": "200"})
    assert done.returncode == 0, done.stderr
    assert f"warning: {path}:5: not a whole JSON record (torn or garbled), skipped" in flat(done.stderr)
    assert "test_efficientnet" in done.stdout and "Traceback" not in done.stderr


@pytest.mark.filterwarnings("ignore::sftbench.errors.SftbenchWarning")
@pytest.mark.parametrize("content, message", [
    ("\x00\x01\x02 binary junk\n{{{\n", r"has no readable record \(2 garbled line\(s\), the first at line 1\)"),
    ('{"schema_version": 99, "run_key": "a"}\n', r"r.jsonl:1: result schema version 99 is newer than or unknown"),
    ('{"schema_version": 2, "run_key": 5}\n', r"r.jsonl:1: record field .* is invalid"),
    ("[1, 2]\n", r"r.jsonl:1: a record must be a JSON object, not list"),
])
def test_an_unusable_results_file_is_one_sentence_and_exit_2(tmp_path, content, message):
    path = tmp_path / "r.jsonl"
    path.write_text(content)
    result = run_cli("leaderboard", str(path))
    assert result.exit_code == 2
    error = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and str(path) in flat(result.output)
    with pytest.raises(ResultsFormatError, match=message):
        list(read_records(path))


# --- baselines --------------------------------------------------------------------------------


@pytest.fixture
def tiny_suite_file(tiny_suite, write_suite):
    return write_suite(tiny_suite)


@pytest.mark.parametrize("mutate, message", [
    (lambda text: text[: len(text) // 2], r"is not valid JSON \(line \d+\); restore it from git or re-bless it"),
    (lambda text: "\x00" * 20, r"is not valid JSON"),
    (lambda text: text.replace('"schema_version": 1', '"schema_version": 7'), r"has schema version 7"),
    (lambda text: "[]", r"has schema version None"),
])
def test_a_corrupt_or_future_baseline_is_one_sentence_and_exit_2(tmp_path, tiny_suite_file, mutate, message):
    baseline = tmp_path / "baseline.json"
    baseline.write_text(mutate((FIXTURES / "baseline-v1.json").read_text()))
    result = run_cli("check", "--suite", str(tiny_suite_file), "--results", str(RESULTS), "--baseline", str(baseline))
    assert result.exit_code == 2, result.output
    assert str(baseline) in flat(result.output) and "Traceback" not in result.output
    assert re.search(message, flat(result.output))


# --- weights files ----------------------------------------------------------------------------


def _write_hostile(path: Path, kind: str) -> None:
    good = path.with_name("good.pth")
    torch.save({"w": torch.ones(2)}, good)
    writers = {
        "truncated": lambda: path.write_bytes(good.read_bytes()[:100]),
        "text": lambda: path.write_text("definitely not weights\n"),
        "empty": lambda: path.write_bytes(b""),
        "tensor": lambda: torch.save(torch.ones(3), path),
        "list": lambda: torch.save([torch.ones(1)], path),
        "empty_dict": lambda: torch.save({}, path),
        "non_tensor_values": lambda: torch.save({"w": 1.0}, path),
        "code_pickle": lambda: path.write_bytes(pickle.dumps(os.system, protocol=2)),  # torch.save's protocol
        "code_pickle_v5": lambda: path.write_bytes(pickle.dumps(os.system, protocol=5)),
    }
    writers[kind]()


@pytest.mark.parametrize("kind, message", [
    ("truncated", "is corrupt, truncated or not a weights file"),
    ("text", "is corrupt, truncated or not a weights file"),
    ("empty", "is corrupt, truncated or not a weights file"),
    ("tensor", "holds a Tensor, not a state dict"),
    ("list", "holds a list, not a state dict"),
    ("empty_dict", "holds an empty mapping, not a state dict"),
    ("non_tensor_values", "holds a mapping with non-tensor values, not a state dict"),
    ("code_pickle", "holds pickled objects that torch.load(weights_only=True) refuses to run (GLOBAL posix.system)"),
    ("code_pickle_v5", "is corrupt, truncated or not a weights file (Unsupported operand"),
])
def test_a_hostile_weights_file_is_one_sentence_naming_it(tmp_path, kind, message):
    path = tmp_path / f"{kind}.pth"
    _write_hostile(path, kind)
    with pytest.raises(WeightsUnavailableError) as info:
        read_state_dict(BackboneSpec(name="resnet18", weights={"file": str(path)}))
    assert message in str(info.value) and str(path) in str(info.value) and "\n" not in str(info.value)


@pytest.mark.trains
def test_a_hostile_weights_file_stops_the_run_in_preflight(tmp_path, tiny_suite, write_suite):
    path = tmp_path / "code.pth"
    _write_hostile(path, "code_pickle")
    tiny_suite["matrix"]["backbones"] = [{"name": "test_efficientnet", "weights": {"file": str(path)}}]
    result = run_cli("run", "--suite", str(write_suite(tiny_suite)), "--device", "cpu", "--out", str(tmp_path))
    assert result.exit_code == 2 and "refuses to run" in flat(result.output)


# --- one writer per run -----------------------------------------------------------------------

HOLDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from sftbench.results.store import Store
    store = Store(Path(sys.argv[1]))
    store.lock.acquire()
    print("held", flush=True)
    time.sleep(60)
""")


@pytest.mark.trains
def test_a_second_writer_of_the_same_run_is_refused_naming_the_holder(tmp_path, tiny_suite, write_suite):
    tiny_suite["matrix"]["strategies"] = ["linear_probe"]
    suite = write_suite(tiny_suite)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path / "tiny" / "busy.jsonl")],
                              stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert holder.stdout.readline().strip() == "held"
        result = run_cli("run", "--suite", str(suite), "--device", "cpu", "--out", str(tmp_path), "--run-id", "busy")
        assert result.exit_code == 2
        assert f"{tmp_path / 'tiny' / 'busy.jsonl'} is being written by pid {holder.pid} on" in flat(result.output)
        assert "pick another --run-id" in flat(result.output)
        start = time.perf_counter()
        other = run_cli("run", "--suite", str(suite), "--device", "cpu", "--out", str(tmp_path), "--run-id", "free")
        assert other.exit_code == 0, other.output  # another run id in the same folder works side by side
        assert time.perf_counter() - start < 60
    finally:
        holder.kill()
        holder.wait()
    assert not (tmp_path / "tiny" / "busy.jsonl").exists()  # the refused run wrote nothing
    again = run_cli("run", "--suite", str(suite), "--device", "cpu", "--out", str(tmp_path), "--run-id", "busy")
    assert again.exit_code == 0, again.output  # a killed holder releases the lock at once

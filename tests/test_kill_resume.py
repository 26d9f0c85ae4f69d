"""Crash safety: SIGKILL `sftbench run` at 20 random moments of a 24-case suite, resuming after each.

Afterwards every line of the results file parses, none is torn, every case is there exactly once,
and the metrics equal those of an uninterrupted run of the same suite.
"""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sftbench.results.record import Record

KILLS = 20
SEED = 20261129  # the kill moments are random, and the same on every run of the test


def _cmd(suite: Path, out: Path, run_id: str) -> list[str]:
    return [sys.executable, "-m", "sftbench", "run", "--suite", str(suite), "--device", "cpu", "--out", str(out),
            "--run-id", run_id]


def _holder_pid(results: Path) -> int | None:
    try:
        return json.loads(results.with_name(results.name + ".holder").read_text())["pid"]
    except (OSError, ValueError, KeyError):
        return None


def _line_count(results: Path) -> int:
    return len(results.read_text().splitlines()) if results.exists() else 0


def _kill_at_random_moment(cmd: list[str], results: Path, rng: random.Random, case_seconds: float) -> bool:
    """Start a run, wait until it holds the run (imports and preflight done), a quarter of the time
    also until it has recorded one more case, then SIGKILL it a random fraction of one case's time later
    (measured on this machine, so the kills land inside cases on a fast machine and a slow one).
    True when the kill landed before the run finished by itself."""
    before = _line_count(results)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while _holder_pid(results) != proc.pid and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    if rng.random() < 0.25:
        while _line_count(results) == before and proc.poll() is None and time.time() < deadline:
            time.sleep(0.01)
    time.sleep(rng.uniform(0.0, 1.0) * case_seconds)  # about 0.6 cases a kill: 20 kills end inside the suite
    landed = proc.poll() is None
    if landed:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return landed


def _comparable(record: Record) -> tuple:
    return (record.metrics, record.per_example.correct if record.per_example else None, record.history)


@pytest.fixture
def long_suite(tiny_suite, write_suite):
    tiny_suite["defaults"]["seeds"] = list(range(12))  # 2 strategies x 12 seeds = 24 cases
    tiny_suite["defaults"]["epochs"] = 3
    return write_suite(tiny_suite)


def test_twenty_kills_lose_nothing_tear_nothing_and_change_no_metric(long_suite, tmp_path):
    out = tmp_path / "out"
    started = time.perf_counter()
    reference = subprocess.run(_cmd(long_suite, out, "reference"), capture_output=True, text=True, timeout=600)
    assert reference.returncode == 0, reference.stderr
    case_seconds = (time.perf_counter() - started) / 24  # an upper bound: start-up is included
    expected = {r.run_key: _comparable(r) for r in map(_record, _lines(out / "tiny" / "reference.jsonl"))}
    assert len(expected) == 24

    results, rng, kills, attempts, progress = out / "tiny" / "killed.jsonl", random.Random(SEED), 0, 0, []
    while kills < KILLS:
        attempts += 1
        cmd = _cmd(long_suite, out, "killed") + (["--resume"] if results.exists() else [])
        kills += _kill_at_random_moment(cmd, results, rng, case_seconds)
        progress.append(len(_lines(results)) if results.exists() else 0)
        assert attempts < 3 * KILLS, "the run keeps finishing before the kill: make the cases longer"
    assert progress[-1] < 24, "every kill must land inside the suite, not after it"
    assert progress == sorted(progress), "a kill lost a recorded case"
    done_before = progress[-1]
    assert done_before > 0, "no case survived the kills: the resume below would test nothing"
    final = subprocess.run(_cmd(long_suite, out, "killed") + ["--resume"], capture_output=True, text=True,
                           timeout=600, env={**os.environ, "COLUMNS": "250"})
    assert final.returncode == 0, final.stderr
    assert final.stdout.count("already recorded, skipped") == done_before

    lines = _lines(results)
    records = [_record(line) for line in lines]  # every line parses as a whole record
    keys = [r.run_key for r in records]
    assert sorted(keys) == sorted(expected)  # every case exactly once
    assert {r.run_key: _comparable(r) for r in records} == expected  # bit-identical metrics
    torn = results.with_name(results.name + ".torn")
    print(f"\n{kills} kills in {attempts} attempts; cases recorded after each: {progress}; {len(lines)} whole lines; "
          f"{len(torn.read_text().splitlines()) if torn.exists() else 0} torn tail(s) moved aside")


def _lines(path: Path) -> list[str]:
    text = path.read_text()
    assert text.endswith("\n"), "the file ends in a torn line"
    return text.splitlines()


def _record(line: str) -> Record:
    return Record.from_json(json.loads(line), "line")

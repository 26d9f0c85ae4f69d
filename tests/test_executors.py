"""The pool executor: the same records as serial, and a worker killed mid-case fails only that case."""
from __future__ import annotations

import json
import os
import signal

import torch
from typer.testing import CliRunner

from sftbench.cli import app
from sftbench.engine.executors import Pool, cpu_slots
from sftbench.engine.observer import SilentObserver
from sftbench.engine.runner import RunOptions
from sftbench.results.store import Store
from sftbench.suite.cases import expand
from sftbench.suite.loader import parse_suite


def read(path):
    return {r["run_key"]: r for r in map(json.loads, path.read_text().splitlines())}


def test_pool_and_serial_give_identical_records(tiny_suite, write_suite, tmp_path):
    tiny_suite["defaults"]["seeds"] = [0, 1]
    suite, out = write_suite(tiny_suite), tmp_path / "out"
    threads = torch.get_num_threads()
    try:  # each of 2 pool workers gets 1 of the 2 cores; float sums depend on the thread count
        serial = CliRunner().invoke(app, ["run", "--suite", str(suite), "--device", "cpu", "--out", str(out),
                                          "--run-id", "serial", "--executor", "serial", "--threads", "1"])
    finally:
        torch.set_num_threads(threads)
    pool = CliRunner().invoke(app, ["run", "--suite", str(suite), "--device", "cpu", "--out", str(out),
                                    "--run-id", "pool", "--executor", "pool", "--workers", "2"])
    assert serial.exit_code == 0 and pool.exit_code == 0, pool.output
    a, b = read(out / "tiny" / "serial.jsonl"), read(out / "tiny" / "pool.jsonl")
    assert sorted(a) == sorted(b) and len(a) == 4
    for key in a:
        for field in ("metrics", "per_example", "history", "spec_hash"):
            assert a[key][field] == b[key][field], (key, field)


class KillOne(SilentObserver):
    """Kills the worker that starts `victim`, the way the OOM killer or a segfault would."""

    def __init__(self, victim: str):
        self.victim, self.finished = victim, []

    def case_assigned(self, case, pid):
        if case.run_key == self.victim:
            os.kill(pid, signal.SIGKILL)

    def case_finished(self, record):
        self.finished.append(record)


def test_a_worker_killed_mid_case_fails_that_case_and_the_suite_goes_on(tiny_suite, tmp_path):
    tiny_suite["defaults"]["seeds"] = [0, 1]
    tiny_suite["defaults"]["epochs"] = 20  # long enough that the kill lands mid-case
    cases = expand(parse_suite(tiny_suite))
    victim = cases[1].run_key
    store = Store.for_run(tmp_path, "tiny", "killed")
    observer = KillOne(victim)
    records = Pool(cpu_slots(2)).run(cases, store, RunOptions(torch.device("cpu")), observer)
    by_key = {r.run_key: r for r in records}
    assert sorted(by_key) == sorted(c.run_key for c in cases)  # every case has a record, once
    dead = by_key[victim]
    assert dead.status == "failed" and dead.error.type == "WorkerDied" and "signal SIGKILL" in dead.error.message
    assert all(r.ok for key, r in by_key.items() if key != victim)  # a fresh worker took over
    assert len(store.records()) == 4


def test_pool_resume_skips_finished_cases(tiny_suite, tmp_path):
    cases = expand(parse_suite(tiny_suite))
    store = Store.for_run(tmp_path, "tiny", "r")
    options = RunOptions(torch.device("cpu"))
    first = Pool(cpu_slots(2)).run(cases[:1], store, options)
    again = Pool(cpu_slots(2)).run(cases, store, options, resume=True)
    assert [r.run_key for r in first] == [cases[0].run_key] and [r.run_key for r in again] == [cases[1].run_key]

"""The pool executor: the same records as serial, and a worker killed mid-case fails only that case."""
from __future__ import annotations

import json
import os
import signal

import pytest
import torch

from sftbench.engine.executors import Pool, cpu_slots
from sftbench.engine.observer import SilentObserver
from sftbench.engine.runner import RunOptions
from sftbench.results.store import Store
from sftbench.suite.cases import expand
from sftbench.suite.loader import parse_suite


def read(path):
    return {r["run_key"]: r for r in map(json.loads, path.read_text().splitlines())}


class KillOne(SilentObserver):
    """Kills the worker that starts `victim`, the way the OOM killer or a segfault would."""

    def __init__(self, victim: str):
        self.victim, self.finished = victim, []

    def case_running(self, case, pid):
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


class FakeProcess:
    def __init__(self, exitcode):
        self.exitcode, self.pid = exitcode, 1

    def join(self, timeout=None):
        pass


class FakeConn:
    def __init__(self):
        self.sent = []

    def send(self, message):
        self.sent.append(message)


def test_a_worker_lost_before_it_began_its_case_hands_the_case_to_its_replacement(tiny_suite, tmp_path):
    from sftbench.engine.executors import Slot, _PoolRun, _Worker

    cases = expand(parse_suite(tiny_suite))
    fresh = _Worker(FakeProcess(None), FakeConn(), Slot())
    pool = Pool([Slot()])
    pool._start = lambda slot, options, run_id: fresh
    run = _PoolRun(pool, cases, [1], Store.for_run(tmp_path, "tiny", "r"), RunOptions(torch.device("cpu")),
                   SilentObserver())
    run.pending = {0, 1}
    lost = _Worker(FakeProcess(-9), FakeConn(), Slot(), case=0, started=False)  # killed between cases
    assert run._replace(lost) is fresh
    assert run.records == [] and fresh.case == 0 and fresh.conn.sent == [(0, cases[0])]
    started = _Worker(FakeProcess(-9), FakeConn(), Slot(), case=0, started=True)  # killed mid-case
    run._replace(started)
    assert [r.error.type for r in run.records] == ["WorkerDied"]


def test_pick_executor_chooses_by_name_device_and_knobs(monkeypatch):
    import torch

    from sftbench.engine import executors
    from sftbench.engine.executors import ExecutorChoice, Pool, pick_executor, run_serial
    from sftbench.errors import ConfigError

    cpu = torch.device("cpu")
    assert pick_executor(ExecutorChoice(), cpu) is run_serial  # auto on a CPU: serial
    pool = pick_executor(ExecutorChoice("auto", workers=3, threads=1), cpu)
    assert isinstance(pool.__self__, Pool) and [s.threads for s in pool.__self__.slots] == [1, 1, 1]
    assert isinstance(pick_executor(ExecutorChoice("pool"), cpu).__self__, Pool)
    with pytest.raises(ConfigError, match="--executor 'threads' is unknown; use serial, pool, ray or auto"):
        pick_executor(ExecutorChoice("threads"), cpu)
    monkeypatch.setattr(executors.torch.cuda, "device_count", lambda: 4)  # four GPUs visible
    gpus = pick_executor(ExecutorChoice(devices="1,3"), torch.device("cuda"))
    assert [s.env for s in gpus.__self__.slots] == [{"CUDA_VISIBLE_DEVICES": "1"}, {"CUDA_VISIBLE_DEVICES": "3"}]
    assert len(pick_executor(ExecutorChoice(), torch.device("cuda")).__self__.slots) == 4  # auto: every GPU


@pytest.mark.parametrize("text", ["4", "0,x", "", "-1"])
def test_a_device_list_outside_the_visible_gpus_is_one_sentence(text):
    from sftbench.engine.executors import _devices
    from sftbench.errors import ConfigError

    with pytest.raises(ConfigError, match=rf"^--devices '{text}' is not a list of visible GPU indices \(0 to 3\)"):
        _devices(text, 4)
    assert _devices("all", 2) == [0, 1] and _devices("2,0", 4) == [2, 0]


def test_exit_reasons_name_signals_and_codes():
    from sftbench.engine.executors import _exit_reason

    assert _exit_reason(-9) == "signal SIGKILL" and _exit_reason(-11) == "signal SIGSEGV"
    assert _exit_reason(1) == "exit code 1" and _exit_reason(-200) == "signal 200"


def test_workers_that_die_at_start_stop_the_pool_with_one_sentence_and_leave_no_process(tiny_suite, tmp_path,
                                                                                          monkeypatch):
    import multiprocessing

    from sftbench.engine.executors import WorkersKeepDying

    broken = tmp_path / "site"
    broken.mkdir()
    (broken / "sitecustomize.py").write_text("import os\nos._exit(3)\n")  # every new interpreter exits at once
    monkeypatch.setenv("PYTHONPATH", str(broken))  # spawned workers inherit it; this process is past start-up
    cases = expand(parse_suite(tiny_suite))
    pool = Pool(cpu_slots(2, threads=1))
    with pytest.raises(WorkersKeepDying, match=r"^\d+ worker processes died \(exit code 3\); run with --executor serial"):
        pool.run(cases, Store(tmp_path / "r.jsonl"), RunOptions(torch.device("cpu")))
    assert pool.restarts == len(cases) + 2 + 1  # gave up just past one replacement per case and slot
    assert not multiprocessing.active_children()  # every worker it started is gone

"""The Ray executor on a local `ray.init()` (CPU, offline): the same records as serial and pool, a task
lost with its worker retried once then recorded FAILED, and `resources` kept out of the spec hash."""
from __future__ import annotations

import json
import os
import sys
import textwrap

import pytest
import ray
import torch
from typer.testing import CliRunner

from sftbench.cli import app
from sftbench.engine.executors import cpu_slots
from sftbench.engine.ray_executor import RayExecutor
from sftbench.engine.runner import RunOptions
from sftbench.results.store import Store
from sftbench.suite.cases import expand
from sftbench.suite.loader import parse_suite

# A strategy that SIGKILLs the process training it, the way the OOM killer or a lost node would:
# `times` kills in all, counted in a file so that Ray's retry (a fresh worker) sees the earlier ones.
KILLER = textwrap.dedent('''
    import os, signal
    from pathlib import Path
    from sftbench.strategies.base import Params
    from sftbench.strategies.builtin import Full

    class KillerParams(Params):
        counter: str
        times: int

    class Killer(Full):
        Params = KillerParams

        def plan(self, backbone, epoch, epochs):
            counter = Path(self.params.counter)
            kills = int(counter.read_text()) if counter.exists() else 0
            if kills < self.params.times:
                counter.write_text(str(kills + 1))
                os.kill(os.getpid(), signal.SIGKILL)
            return super().plan(backbone, epoch, epochs)
''')


@pytest.fixture(scope="module")
def local_ray(tmp_path_factory):
    modules = tmp_path_factory.mktemp("modules")
    (modules / "killer_strategy.py").write_text(KILLER)
    sys.path.insert(0, str(modules))
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(modules), old]))  # Ray's workers inherit it
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()
    sys.path.remove(str(modules))
    os.environ.pop("PYTHONPATH") if old is None else os.environ.__setitem__("PYTHONPATH", old)


def read(path):
    return {r["run_key"]: r for r in map(json.loads, path.read_text().splitlines())}


def test_pool_workers_honour_threads_and_otherwise_split_the_cores(monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 16)
    assert [s.threads for s in cpu_slots(4)] == [4, 4, 4, 4]
    assert [s.threads for s in cpu_slots(3, threads=1)] == [1, 1, 1]
    monkeypatch.setattr(os, "cpu_count", lambda: None)
    assert [s.threads for s in cpu_slots(2)] == [1, 1]


def test_serial_pool_and_ray_give_identical_records(local_ray, tiny_suite, write_suite, tmp_path, monkeypatch):
    # a user's 4-core box, not CI's 2: unasked, the pool would give each worker 2 threads
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    tiny_suite["defaults"]["seeds"] = [0, 1]
    tiny_suite["defaults"]["resources"] = {"cpus": 1}  # one thread per Ray task, as in serial and pool
    suite, out = write_suite(tiny_suite), tmp_path / "out"
    common = ["run", "--suite", str(suite), "--device", "cpu", "--out", str(out)]
    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # not 1, so that a run's leaked `--threads 1` would show
    try:  # float sums depend on the thread count: every executor runs a case on one thread
        serial = CliRunner().invoke(app, common + ["--run-id", "serial", "--executor", "serial", "--threads", "1"])
        assert torch.get_num_threads() == 2  # an in-process run gives the process its own count back
        pool = CliRunner().invoke(app, common + ["--run-id", "pool", "--executor", "pool", "--workers", "2", "--threads", "1"])
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)
    on_ray = CliRunner().invoke(app, common + ["--run-id", "ray", "--executor", "ray"])
    assert serial.exit_code == pool.exit_code == on_ray.exit_code == 0, on_ray.output
    runs = [read(out / "tiny" / f"{name}.jsonl") for name in ("serial", "pool", "ray")]
    assert len(runs[0]) == 4 and all(sorted(run) == sorted(runs[0]) for run in runs)
    for key in runs[0]:
        for field in ("metrics", "per_example", "history", "spec_hash"):
            assert runs[0][key][field] == runs[1][key][field] == runs[2][key][field], (key, field)
    for run in runs:  # every worker process calibrates itself, at its own thread count, around each case
        for record in run.values():
            calibration = record["env"]["calibration"]
            assert calibration["threads"] == record["env"]["torch_threads"] == 1
            assert calibration["before"]["gemm_gflops"] > 0 and calibration["after"]["gemm_gflops"] > 0


def killer_cases(tiny_suite, tmp_path, times):
    tiny_suite["matrix"]["strategies"] = [
        {"name": "killer_strategy:Killer", "params": {"counter": str(tmp_path / "kills"), "times": times}}, "full"]
    return expand(parse_suite(tiny_suite))


@pytest.mark.parametrize("times, status", [(1, "ok"), (2, "failed")])
def test_a_lost_task_is_retried_once_then_recorded_failed(local_ray, tiny_suite, tmp_path, times, status):
    cases = killer_cases(tiny_suite, tmp_path, times)
    store = Store.for_run(tmp_path, "tiny", "lost")
    records = {r.run_key: r for r in RayExecutor().run(cases, store, RunOptions(torch.device("cpu")))}
    victim = next(r for key, r in records.items() if "Killer" in key)
    assert victim.status == status and (tmp_path / "kills").read_text() == str(times)
    if status == "failed":
        assert victim.error.type == "WorkerDied" and "retried 1 time" in victim.error.message
    assert all(r.ok for r in records.values() if r is not victim)  # the suite went on
    assert len(store.records()) == len(cases) == 2


def test_a_case_larger_than_the_cluster_fails_with_its_resources_named(local_ray, tiny_suite, tmp_path):
    tiny_suite["defaults"]["resources"] = {"cpus": 1, "gpus": 1}
    cases = expand(parse_suite(tiny_suite))[:1]
    store = Store.for_run(tmp_path, "tiny", "big")
    [record] = RayExecutor().run(cases, store, RunOptions(torch.device("cpu")))
    assert record.status == "failed" and record.error.type == "ResourcesUnavailable"
    assert "1 GPU(s) per task" in record.error.message and "has 2 CPU(s) and 0 GPU(s)" in record.error.message


def test_resources_do_not_change_the_spec_hash(tiny_suite):
    plain = expand(parse_suite(tiny_suite))
    tiny_suite["defaults"]["resources"] = {"cpus": 4, "gpus": 1}
    placed = expand(parse_suite(tiny_suite))
    assert [c.spec_hash for c in plain] == [c.spec_hash for c in placed]
    assert placed[0].train.resources.cpus == 4


def test_ray_resume_skips_finished_cases(local_ray, tiny_suite, tmp_path):
    cases = expand(parse_suite(tiny_suite))
    store = Store.for_run(tmp_path, "tiny", "r")
    options = RunOptions(torch.device("cpu"))
    first = RayExecutor().run(cases[:1], store, options)
    again = RayExecutor().run(cases, store, options, resume=True)
    assert [r.run_key for r in first] == [cases[0].run_key] and [r.run_key for r in again] == [cases[1].run_key]

"""The Ray executor's driver logic against a fake `ray` module (no cluster, milliseconds): it starts
and stops its own Ray only when none runs, says in one sentence when Ray is missing or unreachable,
and never has more tasks in flight than the cluster's CPUs hold."""
from __future__ import annotations

import sys
import types

import pytest
import torch
from conftest import fake_record

from sftbench.engine import ray_executor
from sftbench.engine.ray_executor import RayExecutor
from sftbench.engine.runner import RunOptions
from sftbench.errors import ConfigError
from sftbench.results.store import Store
from sftbench.suite.cases import expand
from sftbench.suite.loader import parse_suite


class FakeRay:
    """Just the calls the driver makes. Tasks finish in submission order, one per wait()."""

    exceptions = types.SimpleNamespace(RayError=RuntimeError)

    def __init__(self, cpus: float = 2.0, initialized: bool = False, init_error: Exception | None = None):
        self.cpus, self.initialized, self.init_error = cpus, initialized, init_error
        self.calls: list[str] = []
        self.in_flight: list[object] = []
        self.most_in_flight = 0
        self.results: dict[int, dict] = {}

    def is_initialized(self) -> bool:
        return self.initialized

    def init(self, **kwargs) -> None:
        self.calls.append(f"init {kwargs.get('address')}")
        if self.init_error is not None:
            raise self.init_error
        self.initialized = True

    def shutdown(self) -> None:
        self.calls.append("shutdown")
        self.initialized = False

    def cluster_resources(self) -> dict[str, float]:
        return {"CPU": self.cpus}

    def remote(self, **_):
        fake = self

        def decorate(fn):
            class Task:
                def options(self, **_):
                    return self

                def remote(self, case, options, run_id, threads):
                    ref = object()
                    fake.results[id(ref)] = fake_record(case_id=case.case_id, run_key=case.run_key, seed=case.seed,
                                                        run_id=run_id, status="ok").to_json_dict()
                    fake.in_flight.append(ref)
                    fake.most_in_flight = max(fake.most_in_flight, len(fake.in_flight))
                    return ref

            return Task()

        return decorate

    def wait(self, refs, num_returns, timeout):
        done = [r for r in self.in_flight if r in refs][:num_returns]
        for r in done:
            self.in_flight.remove(r)
        return done, [r for r in refs if r not in done]

    def get(self, ref):
        return self.results[id(ref)]

    def cancel(self, ref, force):
        self.calls.append("cancel")


def _cases(tiny_suite, seeds=(0, 1, 2)):
    tiny_suite["defaults"]["seeds"] = list(seeds)
    return expand(parse_suite(tiny_suite))  # 2 strategies x 3 seeds = 6 one-CPU cases


def _run(fake: FakeRay, cases, tmp_path, address=None, monkeypatch=None):
    monkeypatch.setattr(ray_executor, "_ray", lambda: fake)
    return RayExecutor(address).run(cases, Store(tmp_path / "r.jsonl"), RunOptions(torch.device("cpu")))


def test_it_starts_its_own_ray_and_stops_it_and_never_exceeds_the_cluster(tiny_suite, tmp_path, monkeypatch):
    fake = FakeRay(cpus=2)
    records = _run(fake, _cases(tiny_suite), tmp_path, monkeypatch=monkeypatch)
    assert len(records) == 6 and all(r.ok for r in records)
    assert fake.calls == ["init None", "shutdown"]
    assert fake.most_in_flight == 2  # two one-CPU tasks on a two-CPU cluster, never a queue inside Ray


def test_a_ray_already_running_is_used_and_left_running(tiny_suite, tmp_path, monkeypatch):
    fake = FakeRay(cpus=8, initialized=True)
    _run(fake, _cases(tiny_suite), tmp_path, monkeypatch=monkeypatch)
    assert fake.calls == [] and fake.initialized and fake.most_in_flight == 6


def test_an_unreachable_cluster_is_one_sentence_naming_the_address(tiny_suite, tmp_path, monkeypatch):
    fake = FakeRay(init_error=ConnectionError("Could not find any running Ray instance. Please specify the one"))
    with pytest.raises(ConfigError) as err:
        _run(fake, _cases(tiny_suite), tmp_path, address="10.0.0.7:6379", monkeypatch=monkeypatch)
    assert str(err.value) == ("could not connect to the Ray cluster at '10.0.0.7:6379' (ConnectionError: Could not find "
                              "any running Ray instance); check --ray-address and that `ray start --head` runs there")
    assert "shutdown" not in fake.calls  # nothing was started, so nothing is stopped


def test_missing_ray_is_one_sentence_with_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    with pytest.raises(ConfigError, match=r"^--executor ray needs Ray; install it with `pip install 'sftbench\[ray\]'`$"):
        ray_executor._ray()

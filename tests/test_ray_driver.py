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
from sftbench.engine.device import DeviceRequest
from sftbench.engine.observer import SilentObserver
from sftbench.engine.ray_executor import RayExecutor, RaySettings
from sftbench.engine.runner import RunOptions
from sftbench.errors import ConfigError
from sftbench.results.store import Store
from sftbench.suite.cases import expand
from sftbench.suite.loader import parse_suite


class FakeRay:
    """Just the calls the driver makes. A task finishes on the first wait() once a live node is large
    enough for it; `arrivals` maps a count of nodes() calls to a node that joins then (an autoscaler at work)."""

    exceptions = types.SimpleNamespace(RayError=RuntimeError)

    def __init__(self, nodes=({"CPU": 2.0},), initialized: bool = False, init_error: Exception | None = None,
                 node_types=None, arrivals=None):
        self.live, self.initialized, self.init_error = [dict(n) for n in nodes], initialized, init_error
        self.arrivals, self.looks = dict(arrivals or {}), 0
        self.calls: list[str] = []
        self.in_flight: list[object] = []
        self.asked: dict[int, dict] = {}  # id(ref) -> the resources its task asked for
        self.most_in_flight = 0
        self.results: dict[int, dict] = {}
        config = None if node_types is None else types.SimpleNamespace(node_group_configs=[
            types.SimpleNamespace(resources=resources, max_count=count) for resources, count in node_types])
        self._private = types.SimpleNamespace(state=types.SimpleNamespace(
            state=types.SimpleNamespace(get_cluster_config=lambda: config)))

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

    def nodes(self):
        self.looks += 1
        if self.looks in self.arrivals:
            self.live.append(self.arrivals.pop(self.looks))
        return [{"Alive": True, "Resources": n} for n in self.live] + [{"Alive": False, "Resources": {"CPU": 64.0}}]

    def remote(self, **_):
        fake = self

        def decorate(fn):
            class Task:
                asked: dict = {}

                def options(self, num_cpus, num_gpus, resources):
                    task = Task()
                    task.asked = {"CPU": num_cpus, "GPU": num_gpus, **resources}
                    return task

                def remote(self, case, options, run_id, threads):
                    ref = object()
                    fake.results[id(ref)] = fake_record(case_id=case.case_id, run_key=case.run_key, seed=case.seed,
                                                        run_id=run_id, status="ok").to_json_dict()
                    fake.asked[id(ref)] = self.asked
                    fake.in_flight.append(ref)
                    fake.most_in_flight = max(fake.most_in_flight, len(fake.in_flight))
                    return ref

            return Task()

        return decorate

    def _placeable(self, ref) -> bool:
        asked = self.asked[id(ref)]
        return any(all(v <= node.get(k, 0.0) for k, v in asked.items() if v > 0) for node in self.live)

    def wait(self, refs, num_returns, timeout):
        done = [r for r in self.in_flight if r in refs and self._placeable(r)][:num_returns]
        for r in done:
            self.in_flight.remove(r)
        return done, [r for r in refs if r not in done]

    def get(self, ref):
        return self.results[id(ref)]

    def cancel(self, ref, force):
        self.calls.append("cancel")
        self.in_flight.remove(ref)


class Watcher(SilentObserver):
    def __init__(self):
        self.events: list[str] = []

    def case_waiting(self, case, why):
        self.events.append(f"waiting {why}")

    def case_running(self, case, pid):
        self.events.append("running")


def _cases(tiny_suite, seeds=(0, 1, 2)):
    tiny_suite["defaults"]["seeds"] = list(seeds)
    return expand(parse_suite(tiny_suite))  # 2 strategies x 3 seeds = 6 one-CPU cases


def _run(fake: FakeRay, cases, tmp_path, address=None, monkeypatch=None, observer=None, device="cpu", **settings):
    monkeypatch.setattr(ray_executor, "_ray", lambda: fake)
    options = RunOptions(torch.device("cpu"), request=DeviceRequest("tiny", False, device))
    return RayExecutor(RaySettings(address, **settings)).run(cases, Store(tmp_path / "r.jsonl"), options,
                                                           observer or SilentObserver())


def test_it_starts_its_own_ray_and_stops_it_and_never_exceeds_the_cluster(tiny_suite, tmp_path, monkeypatch):
    fake = FakeRay(nodes=[{"CPU": 1.0}, {"CPU": 1.0}])
    records = _run(fake, _cases(tiny_suite), tmp_path, monkeypatch=monkeypatch)
    assert len(records) == 6 and all(r.ok for r in records)
    assert fake.calls == ["init local", "shutdown"]  # a new local Ray: never whatever RAY_ADDRESS names
    assert fake.most_in_flight == 2  # two one-CPU tasks on a two-CPU cluster, never a queue inside Ray


def test_a_ray_already_running_is_used_and_left_running(tiny_suite, tmp_path, monkeypatch):
    fake = FakeRay(nodes=[{"CPU": 8.0}], initialized=True)
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


def _one_case(tiny_suite, **resources):
    tiny_suite["defaults"]["resources"] = resources
    return _cases(tiny_suite, seeds=(0,))[:1]


def test_a_task_must_fit_one_node_not_the_sum_of_all(tiny_suite, tmp_path, monkeypatch):
    fake = FakeRay(nodes=[{"CPU": 1.0}, {"CPU": 1.0}])
    [record] = _run(fake, _one_case(tiny_suite, cpus=2), tmp_path, monkeypatch=monkeypatch)
    assert record.error.type == "ResourcesUnavailable" and not fake.asked  # refused on the driver, never submitted
    assert record.error.message == (
        "the case asks for 2 CPU, 0 GPU per task, but no node of the Ray cluster has that (largest: 1 CPU, 0 GPU; "
        "whole cluster: 2 CPU, 0 GPU); lower `resources` in the suite or add such a node (--ray-wait SECONDS "
        "waits for nodes still to come)")


def test_beyond_every_node_type_of_the_autoscaler_fails_at_once_naming_both_amounts(tiny_suite, tmp_path, monkeypatch):
    fake = FakeRay(nodes=[{"CPU": 1.0}], node_types=[({"CPU": 4.0, "GPU": 1.0}, 3), ({"CPU": 16.0}, 0)])
    [record] = _run(fake, _one_case(tiny_suite, cpus=8, gpus=1), tmp_path, monkeypatch=monkeypatch, wait_s=600)
    assert record.error.type == "ResourcesUnavailable" and not fake.asked  # --ray-wait cannot make it fit
    assert ("asks for 8 CPU, 1 GPU per task" in record.error.message
            and "largest: 1 CPU, 0 GPU" in record.error.message
            and "its autoscaler's node types add none that large either (4 CPU, 1 GPU; 16 CPU, 0 GPU)"
            in record.error.message)


def test_a_case_waits_for_a_node_the_autoscaler_can_add_and_runs_there(tiny_suite, tmp_path, monkeypatch):
    gpu_node = {"CPU": 4.0, "GPU": 1.0}
    fake = FakeRay(nodes=[{"CPU": 2.0}], node_types=[(gpu_node, 2)], arrivals={3: gpu_node})
    watcher = Watcher()
    cpu_case = _cases(tiny_suite, seeds=(1,))[:1]
    cases = _one_case(tiny_suite, gpus=1) + cpu_case  # a GPU case first (LPT order: same cost, seed 0), then a CPU one
    records = _run(fake, cases, tmp_path, monkeypatch=monkeypatch, observer=watcher)
    assert [r.status for r in records] == ["ok", "ok"]
    assert records[0].run_key == cpu_case[0].run_key  # the CPU case did not queue behind the waiting one
    assert watcher.events == ["waiting waiting for a node with 1 CPU, 1 GPU", "running"]


def test_a_waiting_case_is_given_up_after_ray_wait_naming_what_it_waited_for(tiny_suite, tmp_path, monkeypatch):
    fake = FakeRay(nodes=[{"CPU": 2.0}])  # no autoscaler Ray can report: only --ray-wait makes it wait
    [record] = _run(fake, _one_case(tiny_suite, custom={"trainer": 1}), tmp_path, monkeypatch=monkeypatch, wait_s=0.2)
    assert fake.asked and "cancel" in fake.calls  # it was submitted (an autoscaler sees the demand), then cancelled
    assert record.error.type == "ResourcesUnavailable" and record.error.message == (
        "waited 0.2 s for a node with 1 CPU, 0 GPU, trainer 1, but none joined the Ray cluster (largest now: 2 CPU, "
        "0 GPU, trainer 0); raise --ray-wait or check the autoscaler")


def test_ray_wait_lets_a_case_run_on_a_node_that_joins_later(tiny_suite, tmp_path, monkeypatch):
    fake = FakeRay(nodes=[{"CPU": 2.0}], arrivals={2: {"CPU": 1.0, "trainer": 1.0}})
    [record] = _run(fake, _one_case(tiny_suite), tmp_path, monkeypatch=monkeypatch, wait_s=60,
                    resources={"trainer": 1.0})  # --ray-resources trainer=1
    assert record.ok and list(fake.asked.values()) == [{"CPU": 1.0, "GPU": 0.0, "trainer": 1.0}]


@pytest.mark.parametrize("device, requires_gpu, node_types, gpus", [
    ("cpu", False, None, 0.0),
    ("cuda", False, None, 1.0),  # asked for, though no node has one yet: the workers decide
    ("auto", False, None, 0.0),  # a CPU-only cluster
    ("auto", False, [({"CPU": 8.0, "GPU": 1.0}, 4)], 1.0),  # the autoscaler can add GPU nodes
    ("auto", True, None, 1.0),
])
def test_the_gpu_a_case_asks_for_follows_the_device_and_the_cluster(tiny_suite, tmp_path, monkeypatch, device,
                                                                     requires_gpu, node_types, gpus):
    fake = FakeRay(nodes=[{"CPU": 2.0, "GPU": 1.0 if gpus else 0.0}], node_types=node_types)
    monkeypatch.setattr(ray_executor, "_ray", lambda: fake)
    options = RunOptions(torch.device("cpu"), request=DeviceRequest("tiny", requires_gpu, device))
    RayExecutor().run(_one_case(tiny_suite), Store(tmp_path / "r.jsonl"), options)
    assert [asked["GPU"] for asked in fake.asked.values()] == [gpus]


@pytest.mark.parametrize("verbose, shown", [(False, ["ERROR the raylet died"]),
                                            (True, ["INFO Connected to Ray cluster.", "ERROR the raylet died"])])
def test_rays_log_lines_go_through_the_runs_handler_quiet_unless_verbose(verbose, shown):
    import logging

    class Collect(logging.Handler):
        def __init__(self):
            super().__init__()
            self.lines = []

        def emit(self, record):
            self.lines.append(f"{record.levelname} {record.getMessage()}")

    handler, ray_logger = Collect(), logging.getLogger("ray")
    before = ray_logger.handlers[:], logging.lastResort
    with ray_executor._ray_logs(RaySettings(verbose=verbose, log_handler=handler)):
        # children of `ray` of this test's own: Ray's real ones may have been given levels by earlier tests' Rays
        logging.getLogger("ray.sftbench_test.worker").info("Connected to Ray cluster.")
        logging.getLogger("ray.sftbench_test.core").error("the raylet died")
        assert logging.lastResort is handler  # `ray.init` empties the `ray` logger's handlers while it starts
    assert handler.lines == shown
    assert (ray_logger.handlers, logging.lastResort) == before  # the process gets its logging back


def test_the_progress_display_shows_a_waiting_case_as_waiting_until_it_runs(tiny_suite):
    import io

    from rich.console import Console

    from sftbench.cli.progress import RichProgress

    [case] = _one_case(tiny_suite, gpus=1)
    progress = RichProgress(Console(file=io.StringIO(), width=160), 1)
    progress.case_started(0, 1, case)
    row = next(t for t in progress.progress.tasks if t.description.strip() == case.run_key)
    progress.case_waiting(case, "waiting for a node with 1 CPU, 1 GPU")
    assert row.fields["detail"] == "[yellow]waiting for a node with 1 CPU, 1 GPU[/]"
    progress.case_running(case, None)
    assert row.fields["detail"] == ""

"""The Ray executor on a real two-node Ray cluster started on this machine (CPU, offline): a head with one
CPU and no GPU, and a worker node with one CPU, a logical GPU and a `trainer` resource. The same records
as serial and pool; cases placed by their resources and named by their node; devices decided on the
worker; cases waiting for nodes that join later; a task lost with its worker retried once then recorded
FAILED; `resources` kept out of the spec hash."""
from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
import textwrap

import pytest
import ray
import torch
from ray_nodes import LocalCluster
from typer.testing import CliRunner

from sftbench.cli import app
from sftbench.engine.executors import cpu_slots
from sftbench.engine.ray_executor import RayExecutor, RaySettings
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
def cluster(tmp_path_factory):
    """Stopped at the end even when a test or the start-up fails: each node is its own process group."""
    modules = tmp_path_factory.mktemp("modules")
    (modules / "killer_strategy.py").write_text(KILLER)
    sys.path.insert(0, str(modules))
    nodes = LocalCluster()
    nodes.env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(modules), os.environ.get("PYTHONPATH")]))
    nodes.env["SFTBENCH_ALLOW_CODE"] = "1"  # the killer strategy is `module:Class` code, on the nodes too
    try:
        nodes.start_head(cpus=1)
        nodes.connect(ray)
        nodes.add_node(cpus=1, gpus=1, resources={"trainer": 1})  # the GPU is logical: Ray counts it, CUDA has none
        nodes.wait_for(ray, 2)
        yield nodes
    finally:
        ray.shutdown()
        nodes.stop()
        sys.path.remove(str(modules))


def node_ids():
    """The head's and the worker node's Ray ids."""
    alive = [n for n in ray.nodes() if n["Alive"]]
    head = next(n["NodeID"] for n in alive if "node:__internal_head__" in n["Resources"])
    worker = next(n["NodeID"] for n in alive if n["Resources"].get("trainer"))
    return head, worker


def read(path):
    return {r["run_key"]: r for r in map(json.loads, path.read_text().splitlines())}


def test_pool_workers_honour_threads_and_otherwise_split_the_cores(monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 16)
    assert [s.threads for s in cpu_slots(4)] == [4, 4, 4, 4]
    assert [s.threads for s in cpu_slots(3, threads=1)] == [1, 1, 1]
    monkeypatch.setattr(os, "cpu_count", lambda: None)
    assert [s.threads for s in cpu_slots(2)] == [1, 1]


def test_serial_pool_and_ray_give_identical_records(cluster, tiny_suite, write_suite, tmp_path, monkeypatch):
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
    head, worker = node_ids()
    assert {r["env"]["node"]["ray_node_id"] for r in runs[2].values()} <= {head, worker}
    assert all(r["env"]["node"] == {"host": socket.gethostname(), "ray_node_id": None} for r in runs[0].values())
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
def test_a_lost_task_is_retried_once_then_recorded_failed(cluster, tiny_suite, tmp_path, times, status, monkeypatch):
    monkeypatch.setenv("SFTBENCH_ALLOW_CODE", "1")  # the driver's opt-in; the cluster fixture set the nodes'
    cases = killer_cases(tiny_suite, tmp_path, times)
    store = Store.for_run(tmp_path, "tiny", "lost")
    records = {r.run_key: r for r in RayExecutor().run(cases, store, RunOptions(torch.device("cpu")))}
    victim = next(r for key, r in records.items() if "Killer" in key)
    assert victim.status == status and (tmp_path / "kills").read_text() == str(times)
    if status == "failed":
        assert victim.error.type == "WorkerDied" and "retried 1 time" in victim.error.message
    assert all(r.ok for r in records.values() if r is not victim)  # the suite went on
    assert len(store.records()) == len(cases) == 2


def test_a_case_larger_than_the_cluster_fails_with_its_resources_named(cluster, tiny_suite, tmp_path):
    tiny_suite["defaults"]["resources"] = {"cpus": 2, "gpus": 1}  # each node alone is too small
    cases = expand(parse_suite(tiny_suite))[:1]
    store = Store.for_run(tmp_path, "tiny", "big")
    [record] = RayExecutor().run(cases, store, RunOptions(torch.device("cpu")))
    assert record.status == "failed" and record.error.type == "ResourcesUnavailable"
    assert record.error.message.startswith(
        "the case asks for 2 CPU, 1 GPU per task, but no node of the Ray cluster has that (largest: 1 CPU, 1 GPU; "
        "whole cluster: 2 CPU, 1 GPU)")


def test_resources_do_not_change_the_spec_hash(tiny_suite):
    plain = expand(parse_suite(tiny_suite))
    tiny_suite["defaults"]["resources"] = {"cpus": 4, "gpus": 1}
    placed = expand(parse_suite(tiny_suite))
    assert [c.spec_hash for c in plain] == [c.spec_hash for c in placed]
    assert placed[0].train.resources.cpus == 4


def test_ray_resume_skips_finished_cases(cluster, tiny_suite, tmp_path):
    cases = expand(parse_suite(tiny_suite))
    store = Store.for_run(tmp_path, "tiny", "r")
    options = RunOptions(torch.device("cpu"))
    first = RayExecutor().run(cases[:1], store, options)
    again = RayExecutor().run(cases, store, options, resume=True)
    assert [r.run_key for r in first] == [cases[0].run_key] and [r.run_key for r in again] == [cases[1].run_key]


def run_cli(suite, out, run_id, *args):
    return CliRunner().invoke(app, ["run", "--suite", str(suite), "--out", str(out), "--run-id", run_id,
                                    "--executor", "ray", *args])  # joins the Ray this process is connected to


def test_cases_asking_for_the_workers_resource_run_there_and_name_it(cluster, tiny_suite, write_suite, tmp_path):
    result = run_cli(write_suite(tiny_suite), tmp_path, "trainer", "--device", "cpu", "--ray-resources", "trainer=1")
    assert result.exit_code == 0, result.output
    _, worker = node_ids()
    records = read(tmp_path / "tiny" / "trainer.jsonl").values()
    assert len(records) == 2 and all(r["status"] == "ok" for r in records)
    assert {(r["env"]["node"]["host"], r["env"]["node"]["ray_node_id"]) for r in records} == {(socket.gethostname(), worker)}


def test_device_cuda_is_decided_on_the_worker_not_refused_by_a_gpu_less_driver(cluster, tiny_suite, write_suite, tmp_path):
    """The driver (this machine) has no CUDA: before, `--device cuda` was refused here, exit 2, nothing run.
    Now each case asks for a GPU, lands on the worker node (its GPU is logical) and fails there, naming it."""
    tiny_suite["matrix"]["strategies"] = ["linear_probe"]
    result = run_cli(write_suite(tiny_suite), tmp_path, "cuda", "--device", "cuda")
    assert result.exit_code == 3, result.output  # a case failed; not 2, a refusal before anything ran
    assert "on Ray workers (--device cuda, decided on each)" in result.output
    _, worker = node_ids()
    [record] = read(tmp_path / "tiny" / "cuda.jsonl").values()
    assert record["error"]["type"] == "NodeCannotRun" and record["env"]["node"]["ray_node_id"] == worker
    assert record["error"]["message"] == (
        f"node {socket.gethostname()} (Ray node {worker[:8]}) cannot run this case: device 'cuda' was asked for "
        "but no CUDA GPU is visible; use --device cpu or auto")


def test_with_ray_wait_a_case_waits_for_a_node_that_joins_later_and_runs_there(cluster, tiny_suite, tmp_path):
    tiny_suite["matrix"]["strategies"] = ["linear_probe"]
    tiny_suite["defaults"]["resources"] = {"custom": {"late": 1}}
    cases = expand(parse_suite(tiny_suite))
    joined: list = []
    timer = threading.Timer(1.0, lambda: joined.append(cluster.add_node(cpus=1, resources={"late": 1})))
    timer.start()
    try:
        start = time.monotonic()
        [record] = RayExecutor(RaySettings(wait_s=120)).run(cases, Store.for_run(tmp_path, "tiny", "late"),
                                                           RunOptions(torch.device("cpu")))
        waited = time.monotonic() - start
        late = next(n["NodeID"] for n in ray.nodes() if n["Alive"] and n["Resources"].get("late"))
        assert record.ok and record.env.node.ray_node_id == late and waited > 1.0
    finally:
        timer.join()
        for node in joined:
            cluster.stop_node(node)


def test_a_case_no_node_can_hold_waits_only_as_long_as_ray_wait(cluster, tiny_suite, tmp_path):
    tiny_suite["defaults"]["resources"] = {"custom": {"never": 1}}
    cases = expand(parse_suite(tiny_suite))[:1]
    start = time.monotonic()
    [record] = RayExecutor(RaySettings(wait_s=1)).run(cases, Store.for_run(tmp_path, "tiny", "never"),
                                                     RunOptions(torch.device("cpu")))
    assert record.error.type == "ResourcesUnavailable" and 1.0 < time.monotonic() - start < 30
    assert record.error.message.startswith("waited 1 s for a node with 1 CPU, 0 GPU, never 1, but none joined")


def test_the_autoscaler_limits_ray_keeps_decide_between_waiting_and_failing(cluster, tiny_suite, tmp_path):
    """The cluster config an autoscaler writes to Ray's GCS (written here by hand: no autoscaler runs):
    a node type with 8 CPUs may still come, so a 4-CPU case waits (here until its limit); a 16-CPU one
    can never run and fails at once, with both amounts."""
    from ray._raylet import GCS_AUTOSCALER_CLUSTER_CONFIG_KEY, GCS_AUTOSCALER_STATE_NAMESPACE
    from ray.core.generated import autoscaler_pb2
    from ray.experimental import internal_kv

    config = autoscaler_pb2.ClusterConfig()
    group = config.node_group_configs.add(name="big", max_count=2)
    group.resources["CPU"] = 8
    internal_kv._internal_kv_put(GCS_AUTOSCALER_CLUSTER_CONFIG_KEY, config.SerializeToString(),
                                 namespace=GCS_AUTOSCALER_STATE_NAMESPACE)
    try:
        records = {}
        for cpus in (4, 16):
            tiny_suite["defaults"]["resources"] = {"cpus": cpus}
            cases = expand(parse_suite(tiny_suite))[:1]
            [records[cpus]] = RayExecutor(RaySettings(wait_s=1)).run(cases, Store.for_run(tmp_path, "tiny", f"c{cpus}"),
                                                                    RunOptions(torch.device("cpu")))
    finally:
        internal_kv._internal_kv_del(GCS_AUTOSCALER_CLUSTER_CONFIG_KEY, namespace=GCS_AUTOSCALER_STATE_NAMESPACE)
    assert records[4].error.message.startswith("waited 1 s for a node with 4 CPU, 0 GPU")
    assert records[16].error.message.startswith(
        "the case asks for 16 CPU, 0 GPU per task, but no node of the Ray cluster has that (largest: 1 CPU, 1 GPU; "
        "whole cluster: 2 CPU, 1 GPU); its autoscaler's node types add none that large either (8 CPU, 0 GPU)")

"""The worker's side of a Ray task, without Ray: the device is decided there, the worker's own weights and
data are checked (once per worker process), and a worker that cannot run a case says so in one sentence
naming its node. Also the driver-side pieces that decide nothing about devices."""
from __future__ import annotations

import socket
from dataclasses import replace

import pytest
import torch

from sftbench.engine import ray_worker
from sftbench.engine.device import DeviceRequest
from sftbench.engine.preflight import RunTarget, preflight
from sftbench.engine.runner import RunOptions
from sftbench.errors import ConfigError, WeightsUnavailableError
from sftbench.resources_spec import parse_resources
from sftbench.results.record import Record
from sftbench.schema import WeightsFile
from sftbench.suite.cases import expand
from sftbench.suite.loader import parse_suite

pytestmark = pytest.mark.skipif(torch.cuda.is_available(), reason="asserts what a worker without CUDA records")


@pytest.fixture
def case(tiny_suite):
    return expand(parse_suite(tiny_suite))[0]


@pytest.fixture(autouse=True)
def fresh_checks(monkeypatch):
    """A fresh worker's memo; and this process's thread count back (a Ray task sets its own)."""
    monkeypatch.setattr(ray_worker, "_checked", {})
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def remote(case, device, requires_gpu=False, node_id=None, monkeypatch=None):
    if monkeypatch is not None:
        monkeypatch.setattr(ray_worker, "_ray_node_id", lambda: node_id)
    options = RunOptions(torch.device("cpu"), request=DeviceRequest("tiny", requires_gpu, device))
    return Record.model_validate(ray_worker.run_remote(case, options, "r", 1))


def test_a_worker_without_cuda_fails_a_cuda_case_naming_its_node(case, monkeypatch):
    record = remote(case, "cuda:1", node_id="1a2b3c4d5e6f", monkeypatch=monkeypatch)
    assert record.status == "failed" and record.error.type == "NodeCannotRun"
    assert record.error.message == (f"node {socket.gethostname()} (Ray node 1a2b3c4d) cannot run this case: device "
                                    "'cuda' was asked for but no CUDA GPU is visible; use --device cpu or auto")
    assert record.env.node.host == socket.gethostname() and record.env.node.ray_node_id == "1a2b3c4d5e6f"
    assert record.env.node_label == f"{socket.gethostname()}/1a2b3c4d"


def test_requires_gpu_with_auto_is_decided_on_the_worker(case, monkeypatch):
    record = remote(case, "auto", requires_gpu=True, monkeypatch=monkeypatch)
    assert record.error.type == "NodeCannotRun" and "suite 'tiny' needs a GPU (requires_gpu: true)" in record.error.message
    assert record.error.message.startswith(f"node {socket.gethostname()} cannot run this case: ")  # outside Ray: the host


def test_missing_weights_on_the_worker_fail_the_case_checked_once_per_process(case, monkeypatch):
    calls = []

    def missing(spec):
        calls.append(spec.name)
        raise WeightsUnavailableError(f"weights for {spec.name!r} are not on this machine; copy them here")

    monkeypatch.setattr(ray_worker, "check_weights", missing)
    first, second = remote(case, "cpu", monkeypatch=monkeypatch), remote(case, "cpu", monkeypatch=monkeypatch)
    assert first.error.message == second.error.message == (
        f"node {socket.gethostname()} cannot run this case: weights for 'test_efficientnet' are not on this machine; "
        "copy them here")
    assert calls == ["test_efficientnet"]


@pytest.mark.trains
def test_a_worker_that_can_run_the_case_runs_it_and_names_its_node(case, monkeypatch):
    record = remote(case, "auto", node_id="ffee", monkeypatch=monkeypatch)
    assert record.ok and record.env.device == "cpu" and record.env.node.ray_node_id == "ffee"


@pytest.mark.parametrize("name, wants", [("cuda", True), ("cuda:1", True), ("cpu", False), ("auto", False)])
def test_which_requests_ask_a_cluster_for_a_gpu(name, wants):
    assert DeviceRequest("s", False, name).wants_gpu is wants
    assert DeviceRequest("s", True, name).wants_gpu is (wants or name == "auto")


def test_ray_resources_parse_and_refuse_in_one_sentence():
    assert parse_resources("trainer=1, a100=0.5") == {"trainer": 1.0, "a100": 0.5}
    assert parse_resources(None) == {}
    for bad in ("trainer", "trainer=0", "GPU=1", "=1", "trainer=x"):
        with pytest.raises(ConfigError, match=rf"^--ray-resources '{bad}' is not a list of custom resources"):
            parse_resources(bad)


def test_preflight_for_ray_checks_names_and_output_but_leaves_devices_and_files_to_the_workers(case, tmp_path):
    missing = case.backbone.model_copy(update={"weights": WeightsFile(file=str(tmp_path / "no.pt"))})
    broken = replace(case, backbone=missing)
    here = preflight([broken], RunTarget("tiny", True, "cuda", tmp_path, None))
    assert len(here.problems) == 2  # this machine has no GPU, and the weights file is missing
    on_ray = preflight([broken], RunTarget("tiny", True, "cuda", tmp_path, None, on_workers=True))
    assert on_ray.problems == []
    bad_name = preflight([case], RunTarget("tiny", False, "tpu", tmp_path, "../x", on_workers=True))
    assert bad_name.problems == ["unknown device 'tpu'; use auto, cpu, cuda, cuda:N or mps",
                                 "run id '../x' is not a safe file name; use letters, digits, '_', '.' and '-' "
                                 "(starting with a letter or digit, at most 128 characters)"]

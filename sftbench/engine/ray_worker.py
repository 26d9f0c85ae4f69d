"""One Ray task, on the worker that runs it: the device is decided there (a cluster's head often has no
GPU while its workers do), the worker's own weights and data are checked, then the case runs. A worker
that cannot run the case records it FAILED in one sentence naming its node."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any, Optional

import torch

from ..backbones.weights import check_weights
from ..data.splits import check_dataset
from ..errors import SftbenchError
from ..results.environment import node
from ..results.record import Node
from ..suite.cases import Case
from .device import DeviceRequest
from .runner import RunOptions, failed_record, run_case

NODE_CANNOT_RUN = "NodeCannotRun"
_checked: dict[str, Optional[str]] = {}  # a worker process checks each backbone and dataset once


def run_remote(case: Case, options: RunOptions, run_id: str, threads: int) -> dict[str, Any]:
    """The body of one Ray task: one case, on this worker's device, data root and caches. The driver
    always sends the device request (`ray_executor._on_workers`)."""
    assert options.request is not None, "the Ray driver sends the device request"
    torch.set_num_threads(threads)
    here = replace(options, ray_node_id=_ray_node_id())
    device, problems = _device_here(options.request), _file_problems(case, options.data_root)
    if isinstance(device, str):
        problems.insert(0, device)
    if problems:
        where = Node.model_validate(node(here.ray_node_id)).in_words
        return failed_record(case, replace(here, device=torch.device("cpu")), run_id, NODE_CANNOT_RUN,
                             f"node {where} cannot run this case: {'; '.join(problems)}").to_json_dict()
    return run_case(case, replace(here, device=device), run_id).to_json_dict()


def _device_here(request: DeviceRequest) -> torch.device | str:
    """The device on this worker, or why there is none. Ray pins a task's GPUs (CUDA_VISIBLE_DEVICES):
    the first visible one is the task's, whatever index `--device cuda:N` named."""
    local = replace(request, name="cuda") if request.name.startswith("cuda") else request
    try:
        device = local.resolve()
    except SftbenchError as err:
        return str(err)
    return torch.device("cuda:0") if device.type == "cuda" else device


def _file_problems(case: Case, data_root: Optional[str]) -> list[str]:
    """Preflight's weight and data checks, against this worker's files (once per worker process)."""
    checks: list[tuple[str, Callable[[], Any]]] = [
        (f"weights {case.backbone.model_dump_json()}", lambda: check_weights(case.backbone)),
        (f"data {case.dataset.model_dump_json()} {data_root}", lambda: check_dataset(case.dataset, data_root)),
    ]
    return [problem for key, check in checks if (problem := _checked_once(key, check))]


def _checked_once(key: str, check: Callable[[], Any]) -> Optional[str]:
    if key not in _checked:
        try:
            check()
            _checked[key] = None
        except SftbenchError as err:
            _checked[key] = str(err)
    return _checked[key]


def _ray_node_id() -> Optional[str]:
    try:
        import ray  # deferred: only ever called inside a Ray task, where Ray is installed

        return ray.get_runtime_context().get_node_id()
    except Exception:  # called outside Ray (a test): the host name alone names the node
        return None

"""The `ray` executor: each case a Ray task, on a local Ray or an existing cluster (`--ray-address`).

The driver hands out cases longest first, never more than the cluster can run at once (so the
progress display shows what is really running), streams each record back as its task finishes and
writes it to the run's store under the run lock. Data roots and caches are resolved on the worker.
A task lost with its worker or node is retried once by Ray, then recorded FAILED.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any, Optional

import torch

from ..errors import ConfigError, first_sentence
from ..results.record import Record
from ..results.store import Store
from ..suite.cases import Case
from .observer import Observer, SilentObserver
from .runner import RunOptions, failed_record, run_case, unfinished
from .schedule import expected_seconds

RETRIES = 1  # a task lost with its worker or node runs once more before it is recorded FAILED
WAIT_SECONDS = 1.0


@dataclass(frozen=True)
class Demand:
    """What one case's task asks of the cluster."""

    cpus: float
    gpus: float

    @classmethod
    def of(cls, case: Case, device: torch.device) -> "Demand":
        wanted = case.train.resources
        gpus = wanted.gpus if wanted.gpus is not None else (1.0 if device.type == "cuda" else 0.0)
        return cls(wanted.cpus or 1.0, gpus)

    def fits(self, free: dict[str, float]) -> bool:
        return self.cpus <= free.get("CPU", 0.0) + 1e-9 and self.gpus <= free.get("GPU", 0.0) + 1e-9

    def take(self, free: dict[str, float]) -> None:
        free["CPU"], free["GPU"] = free.get("CPU", 0.0) - self.cpus, free.get("GPU", 0.0) - self.gpus


def run_remote(case: Case, options: RunOptions, run_id: str, threads: int) -> dict[str, Any]:
    """The body of one Ray task: one case, on the worker's own data root and caches."""
    torch.set_num_threads(threads)
    device = torch.device("cuda:0") if options.device.type == "cuda" else options.device  # Ray pins its GPUs
    local = RunOptions(device, options.data_root, options.suite_dir)
    return run_case(case, local, run_id).to_json_dict()


class RayExecutor:
    """Runs cases as Ray tasks; starts a local Ray unless one is running or `address` names a cluster."""

    def __init__(self, address: Optional[str] = None, recorded: Optional[dict[tuple[str, str], float]] = None):
        self.address, self.recorded = address, recorded or {}

    def run(self, cases: list[Case], store: Store, options: RunOptions, observer: Observer = SilentObserver(),
            resume: bool = False) -> list[Record]:
        ray = _ray()
        started_here = not ray.is_initialized()
        if started_here:
            _connect(ray, self.address)
        try:
            todo = unfinished(cases, store, observer, resume)
            expected = expected_seconds(cases, self.recorded)
            todo.sort(key=lambda i: (-expected[cases[i].run_key], cases[i].run_key))  # LPT
            return _RayRun(ray, cases, todo, store, options, observer).collect()
        finally:
            if started_here:
                ray.shutdown()


def _ray() -> Any:
    try:
        import ray  # deferred: a heavy optional dependency, only for --executor ray
    except ImportError:
        raise ConfigError("--executor ray needs Ray; install it with `pip install 'sftbench[ray]'`") from None
    return ray


def _connect(ray: Any, address: Optional[str]) -> None:
    try:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    except (ConnectionError, RuntimeError, ValueError) as err:
        where = f"the Ray cluster at {address!r}" if address else "a local Ray instance"
        raise ConfigError(f"could not connect to {where} ({first_sentence(err, True)}); "
                          "check --ray-address and that `ray start --head` runs there") from None


class _RayRun:
    """The driver's side of one Ray run: submit what fits, collect records as tasks finish."""

    def __init__(self, ray: Any, cases: list[Case], todo: list[int], store: Store, options: RunOptions,
                 observer: Observer):
        self.ray, self.cases, self.todo, self.store, self.options, self.observer = ray, cases, todo, store, options, observer
        self.task = ray.remote(max_retries=RETRIES, retry_exceptions=False)(run_remote)
        self.running: dict[Any, tuple[int, Demand]] = {}  # object ref -> case index and what it holds
        self.records: list[Record] = []
        self.total = len(todo)

    def collect(self) -> list[Record]:
        try:
            while self.todo or self.running:
                self._submit_what_fits()
                if self.running:
                    done, _ = self.ray.wait(list(self.running), num_returns=1, timeout=WAIT_SECONDS)
                    for ref in done:
                        self._finish(ref)
        finally:  # Ctrl-C or an error: abandon what still runs; finished records are already stored
            for ref in self.running:
                self.ray.cancel(ref, force=True)
        return self.records

    def _submit_what_fits(self) -> None:
        total = self.ray.cluster_resources()
        free = dict(total)
        for _, held in self.running.values():
            held.take(free)
        while self.todo:
            case = self.cases[self.todo[0]]
            demand = Demand.of(case, self.options.device)
            if not demand.fits(total):
                self._record(failed_record(case, self.options, self.store.run_id, "ResourcesUnavailable",
                                           _too_big(demand, total)), self.todo.pop(0))
                continue
            if not demand.fits(free):
                return
            index = self.todo.pop(0)
            ref = self.task.options(num_cpus=demand.cpus, num_gpus=demand.gpus).remote(
                case, self.options, self.store.run_id, max(1, math.floor(demand.cpus)))
            self.running[ref] = (index, demand)
            demand.take(free)
            self.observer.case_started(len(self.records) + len(self.running) - 1, self.total, case)

    def _finish(self, ref: Any) -> None:
        index, _ = self.running.pop(ref)
        try:
            record = Record.model_validate(self.ray.get(ref))
        except self.ray.exceptions.RayError as err:  # the task's worker or node was lost twice
            record = failed_record(self.cases[index], self.options, self.store.run_id, "WorkerDied",
                                   f"the Ray task running this case was lost and retried {RETRIES} time(s) "
                                   f"({first_sentence(err, True)})")
        self._record(record, index)

    def _record(self, record: Record, index: int) -> None:
        self.store.append(record)
        self.observer.case_finished(record)
        self.records.append(record)


def _too_big(demand: Demand, total: dict[str, float]) -> str:
    return (f"the case asks for {demand.cpus:g} CPU(s) and {demand.gpus:g} GPU(s) per task, but the whole Ray "
            f"cluster has {total.get('CPU', 0):g} CPU(s) and {total.get('GPU', 0):g} GPU(s); "
            "lower `resources` in the suite or add nodes")

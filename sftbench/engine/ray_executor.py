"""The `ray` executor: each case a Ray task, on a local Ray or an existing cluster (`--ray-address`).

The driver checks only what it can know: that some node of the cluster, or a node type its autoscaler
can add, is large enough for each case. The device, the weights and the data are checked on the worker
that runs the case (`ray_worker`). Cases go out longest first, never more than the live nodes can run
at once (so the progress display shows what is really running), except cases waiting for a node that
does not exist yet: those are submitted at once, so that an autoscaler sees them, and given up after
`--ray-wait` seconds (default 15 minutes for an autoscaler's node). Records stream back as tasks finish
and are written to the run's store under the run lock. A task lost with its worker or node is retried
once by Ray, then recorded FAILED.
"""
from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Optional

from ..errors import ConfigError, first_sentence
from ..results.record import Record
from ..results.store import Store
from ..suite.cases import Case
from ..trust import ALLOW_CODE_ENV, code_allowed
from .device import DeviceRequest
from .observer import Observer, SilentObserver
from .ray_cluster import ClusterView, Demand, read_cluster
from .ray_worker import run_remote
from .runner import RunOptions, failed_record, unfinished
from .schedule import expected_seconds

RETRIES = 1  # a task lost with its worker or node runs once more before it is recorded FAILED
WAIT_SECONDS = 1.0
AUTOSCALER_WAIT_S = 900.0  # how long a case waits for a node the autoscaler can add, unless --ray-wait


@dataclass(frozen=True)
class RaySettings:
    """What `run` passes to the Ray executor."""

    address: Optional[str] = None  # None: a new local Ray (or the one this process already runs), never RAY_ADDRESS
    wait_s: Optional[float] = None  # --ray-wait: how long a case may wait for a node the cluster lacks
    resources: dict[str, float] = field(default_factory=dict)  # --ray-resources: custom resources for every case
    verbose: bool = False  # Ray's own info lines and the workers' output
    log_handler: Optional[logging.Handler] = None  # where Ray's log lines go (the run's console)


class RayExecutor:
    """Runs cases as Ray tasks; starts a local Ray unless one is running or `address` names a cluster."""

    def __init__(self, settings: RaySettings = RaySettings(), recorded: Optional[dict[tuple[str, str], float]] = None):
        self.settings, self.recorded = settings, recorded or {}

    def run(self, cases: list[Case], store: Store, options: RunOptions, observer: Observer = SilentObserver(),
            resume: bool = False) -> list[Record]:
        ray = _ray()
        started_here = not ray.is_initialized()
        with _ray_logs(self.settings):
            if started_here:
                _connect(ray, self.settings)
            try:
                todo = unfinished(cases, store, observer, resume)
                expected = expected_seconds(cases, self.recorded)
                todo.sort(key=lambda i: (-expected[cases[i].run_key], cases[i].run_key))  # LPT
                return _RayRun(ray, cases, todo, store, _on_workers(options, cases), observer, self.settings).collect()
            finally:
                if started_here:
                    ray.shutdown()


def _on_workers(options: RunOptions, cases: list[Case]) -> RunOptions:
    """Options whose device the workers decide: the request `run` made, else the device given here."""
    if options.request is not None or not cases:
        return options
    return replace(options, request=DeviceRequest(cases[0].suite, False, str(options.device)))


def _gpu_by_default(request: Optional[DeviceRequest], cluster: ClusterView) -> bool:
    """Whether a case without `gpus` asks for one: `--device cuda` or `requires_gpu` do, and `--device auto`
    does where the cluster has or can add GPUs."""
    return request is not None and (request.wants_gpu or (request.name == "auto" and cluster.has_gpus()))


def _ray() -> Any:
    try:
        import ray  # deferred: a heavy optional dependency, only for --executor ray
    except ImportError:
        raise ConfigError("--executor ray needs Ray; install it with `pip install 'sftbench[ray]'`") from None
    return ray


def _connect(ray: Any, settings: RaySettings) -> None:
    try:
        # "local", never None: None would join whatever RAY_ADDRESS or Ray's current-cluster file names
        env = {"env_vars": {ALLOW_CODE_ENV: "1"}} if code_allowed() else None  # the user's opt-in reaches the workers
        ray.init(address=settings.address or "local", include_dashboard=False, log_to_driver=settings.verbose,
                 configure_logging=False, runtime_env=env)
    except (ConnectionError, RuntimeError, ValueError) as err:
        where = f"the Ray cluster at {settings.address!r}" if settings.address else "a local Ray instance"
        if _refused_token(err):
            raise ConfigError(f"{where} asks for an authentication token that this process did not send; run with "
                              "RAY_AUTH_MODE=token, as its nodes do (Ray reads the token from ~/.ray/auth_token or "
                              "RAY_AUTH_TOKEN)") from None
        raise ConfigError(f"could not connect to {where} ({first_sentence(err, True)}); "
                          "check --ray-address and that `ray start --head` runs there") from None


def _refused_token(err: BaseException) -> bool:
    """Ray 2.5x turns token auth on for `ray start` once a token file exists, and wraps the refusal twice."""
    while err is not None:
        if type(err).__name__ == "AuthenticationError" or "InvalidAuthToken" in str(err):
            return True
        err = err.__cause__ or err.__context__  # type: ignore[assignment]
    return False


@contextmanager
def _ray_logs(settings: RaySettings) -> Iterator[None]:
    """Ray's log lines through the run's handler (its console, above the progress display): errors only,
    or everything from INFO up with --verbose. `ray.init` drops the `ray` logger's handlers while it
    starts, so its start-up warnings reach Python's last-resort handler: that is pointed here too."""
    if settings.log_handler is None:
        yield
        return
    logger, last_resort = logging.getLogger("ray"), logging.lastResort
    saved = logger.handlers[:], logger.level, logger.propagate
    handler = settings.log_handler
    handler.setLevel(logging.INFO if settings.verbose else logging.ERROR)
    logging.lastResort = handler  # type: ignore[assignment]
    try:
        logger.handlers, logger.propagate = [handler], False
        logger.setLevel(logging.INFO)
        yield
    finally:
        logging.lastResort = last_resort
        logger.handlers, logger.propagate = saved[0], saved[2]
        logger.setLevel(saved[1])


@dataclass
class _Task:
    index: int
    demand: Demand
    since: float  # when it was submitted (time.monotonic)
    waiting: bool  # submitted before the cluster had a node large enough for it


class _RayRun:
    """The driver's side of one Ray run: submit what fits, wait for what may come, collect records."""

    def __init__(self, ray: Any, cases: list[Case], todo: list[int], store: Store, options: RunOptions,
                 observer: Observer, settings: RaySettings):
        self.ray, self.cases, self.todo, self.store, self.options, self.observer = ray, cases, todo, store, options, observer
        self.settings = settings
        self.remote = ray.remote(max_retries=RETRIES, retry_exceptions=False)(run_remote)
        self.tasks: dict[Any, _Task] = {}  # object ref -> its case and what it holds
        self.records: list[Record] = []

    def collect(self) -> list[Record]:
        gpu_by_default = _gpu_by_default(self.options.request, read_cluster(self.ray))
        try:
            while self.todo or self.tasks:
                cluster = read_cluster(self.ray)
                self._submit(cluster, self._settle_waiting(cluster), gpu_by_default)
                if self.tasks:
                    done, _ = self.ray.wait(list(self.tasks), num_returns=1, timeout=WAIT_SECONDS)
                    for ref in done:
                        self._finish(ref)
        finally:  # Ctrl-C or an error: abandon what still runs; finished records are already stored
            for ref in self.tasks:
                self.ray.cancel(ref, force=True)
        return self.records

    def _free(self, cluster: ClusterView) -> dict[str, float]:
        free = cluster.total
        for task in self.tasks.values():
            if not task.waiting:
                task.demand.take(free)
        return free

    def _submit(self, cluster: ClusterView, free: dict[str, float], gpu_by_default: bool) -> None:
        """Start what fits, longest first; hand cases only a new node can hold to Ray to wait; fail the rest."""
        while self.todo:
            case = self.cases[self.todo[0]]
            demand = Demand.of(case, gpu_by_default, self.settings.resources)
            if cluster.runs_now(demand):
                if not demand.fits(free):
                    return  # the next case waits for a running one to finish
                self._start(self.todo.pop(0), demand, waiting=False)
                demand.take(free)
            elif self._wait_limit(cluster, demand) > 0:
                self._start(self.todo.pop(0), demand, waiting=True)
            else:
                self._record(failed_record(case, self.options, self.store.run_id, "ResourcesUnavailable",
                                           f"{cluster.shortfall(demand)}; lower `resources` in the suite or add "
                                           "such a node (--ray-wait SECONDS waits for nodes still to come)"),
                             self.todo.pop(0))

    def _wait_limit(self, cluster: ClusterView, demand: Demand) -> float:
        """Seconds a case may wait for a node the cluster lacks: none beyond what a known autoscaler can
        add, else --ray-wait, else 15 minutes where the autoscaler can add one (none where none is known)."""
        if cluster.node_types is not None and not cluster.can_add(demand):
            return 0.0
        if self.settings.wait_s is not None:
            return self.settings.wait_s
        return AUTOSCALER_WAIT_S if cluster.can_add(demand) else 0.0

    def _start(self, index: int, demand: Demand, waiting: bool) -> None:
        case = self.cases[index]
        ref = self.remote.options(num_cpus=demand.cpus, num_gpus=demand.gpus, resources=demand.custom).remote(
            case, self.options, self.store.run_id, max(1, math.floor(demand.cpus)))
        self.tasks[ref] = _Task(index, demand, time.monotonic(), waiting)
        self.observer.case_started(len(self.records) + len(self.tasks) - 1, len(self.cases), case)
        if waiting:
            self.observer.case_waiting(case, f"waiting for a node with {demand}")

    def _settle_waiting(self, cluster: ClusterView) -> dict[str, float]:
        """A waiting case runs once a node large enough has joined and has room; it is given up when
        none has joined within its limit (one that joined but is busy only queues it). Returns what the
        live nodes have free after that."""
        free = self._free(cluster)
        for ref, task in list(self.tasks.items()):
            if not task.waiting:
                continue
            case = self.cases[task.index]
            if cluster.runs_now(task.demand):
                if task.demand.fits(free):
                    task.waiting = False
                    task.demand.take(free)
                    self.observer.case_running(case, None)
            elif time.monotonic() - task.since > (limit := self._wait_limit(cluster, task.demand)):
                self.ray.cancel(ref, force=True)
                del self.tasks[ref]
                self._record(failed_record(case, self.options, self.store.run_id, "ResourcesUnavailable",
                                           f"waited {limit:g} s for a node with {task.demand}, but none joined the "
                                           f"Ray cluster (largest now: {cluster.largest(task.demand)}); raise "
                                           "--ray-wait or check the autoscaler"), task.index)
        return free

    def _finish(self, ref: Any) -> None:
        task = self.tasks.pop(ref)
        try:
            record = Record.model_validate(self.ray.get(ref))
        except self.ray.exceptions.RayError as err:  # the task's worker or node was lost twice
            record = failed_record(self.cases[task.index], self.options, self.store.run_id, "WorkerDied",
                                   f"the Ray task running this case was lost and retried {RETRIES} time(s) "
                                   f"({first_sentence(err, True)})")
        self._record(record, task.index)

    def _record(self, record: Record, index: int) -> None:
        self.store.append(record)
        self.observer.case_finished(record)
        self.records.append(record)

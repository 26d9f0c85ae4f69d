"""Executors: how the cases of a run are spread over the machine.

`serial` runs them one after another in this process. `pool` starts one worker process per
slot (a GPU pinned with CUDA_VISIBLE_DEVICES, or a share of the CPU cores), hands out cases
longest first (LPT), and writes each record to the run's store, under its lock, as it arrives.
A worker that dies mid-case (SIGKILL, segfault, a CUDA error that kills the process) gets that
case recorded FAILED with its signal or exit code, and a fresh worker takes its place.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from typing import Any, Optional

import torch

from ..errors import ConfigError, SftbenchError
from ..results.record import Record
from ..results.store import Store
from ..suite.cases import Case
from .observer import Observer, SilentObserver
from .ray_executor import RayExecutor, RaySettings
from .runner import RunOptions, failed_record, run_case, run_cases, unfinished
from .schedule import expected_seconds

POLL_SECONDS = 0.2
Executor = Callable[[list[Case], Store, RunOptions, Observer, bool], list[Record]]  # cases, store, options, observer, resume


@dataclass(frozen=True)
class Slot:
    """Where one worker runs: its environment and its thread count."""

    env: dict[str, str] = field(default_factory=dict)
    threads: Optional[int] = None


def cpu_slots(workers: int, threads: Optional[int] = None) -> list[Slot]:
    """`threads` per worker when asked (so a pool can match a serial run's float sums), else the
    cores split evenly."""
    cores = os.cpu_count() or 1
    return [Slot(threads=threads or max(1, cores // workers)) for _ in range(workers)]


def gpu_slots(devices: list[int]) -> list[Slot]:
    return [Slot(env={"CUDA_VISIBLE_DEVICES": str(d)}) for d in devices]


def run_serial(cases: list[Case], store: Store, options: RunOptions, observer: Observer = SilentObserver(),
               resume: bool = False) -> list[Record]:
    return run_cases(cases, store, options, observer, resume)


def _worker(slot: Slot, options: RunOptions, run_id: str, conn: Any) -> None:
    """A worker process: run the cases its own pipe brings, until the sentinel."""
    os.environ.update(slot.env)
    if slot.threads:
        torch.set_num_threads(slot.threads)
    device = torch.device("cuda:0") if options.device.type == "cuda" else options.device  # its one visible GPU
    local = RunOptions(device, options.data_root, options.suite_dir)
    while True:
        task = conn.recv()
        if task is None:
            return
        index, case = task
        conn.send(("started", index))  # a worker lost before this line never began the case: rerun it
        conn.send(("done", index, run_case(case, local, run_id).to_json_dict()))


@dataclass
class _Worker:
    process: Any
    conn: Any  # the parent's end of this worker's own pipe: a killed worker breaks only its pipe
    slot: Slot
    case: Optional[int] = None  # index of the case it was given
    started: bool = False  # it acknowledged that case: a death from now on fails the case
    done: bool = False  # exited after its sentinel


class Pool:
    """One process per slot; cases longest first; deaths recorded, workers replaced.

    Each worker has its own pipe, not a shared queue: a worker killed while writing would leave a
    shared queue's lock held forever and stall every other worker."""

    def __init__(self, slots: list[Slot], recorded: Optional[dict[tuple[str, str], float]] = None):
        self.slots, self.recorded = slots, recorded or {}
        self.context = mp.get_context("spawn")  # fork after torch has threads can deadlock
        self.restarts = 0

    def run(self, cases: list[Case], store: Store, options: RunOptions, observer: Observer = SilentObserver(),
            resume: bool = False) -> list[Record]:
        todo = unfinished(cases, store, observer, resume)
        expected = expected_seconds(cases, self.recorded)
        todo.sort(key=lambda i: (-expected[cases[i].run_key], cases[i].run_key))  # LPT
        run = _PoolRun(self, cases, todo, store, options, observer)
        workers = [self._start(slot, options, store.run_id) for slot in self.slots]
        try:
            return run.collect(workers)
        finally:
            for worker in workers:
                if worker.process.is_alive():
                    worker.process.terminate()
                worker.process.join(timeout=5)

    def _start(self, slot: Slot, options: RunOptions, run_id: str) -> _Worker:
        parent, child = self.context.Pipe()
        process = self.context.Process(target=_worker, args=(slot, options, run_id, child), daemon=True)
        process.start()
        child.close()
        return _Worker(process, parent, slot)


class _PoolRun:
    """The parent's side of one pool run: hand out cases, collect records, replace the dead."""

    def __init__(self, pool: Pool, cases: list[Case], todo: list[int], store: Store, options: RunOptions,
                 observer: Observer):
        self.pool, self.cases, self.todo, self.store, self.options, self.observer = pool, cases, todo, store, options, observer
        self.pending, self.records = set(todo), []  # type: ignore[var-annotated]

    def collect(self, workers: list[_Worker]) -> list[Record]:
        for worker in workers:
            self._feed(worker)
        while self.pending:
            live = [w for w in workers if not w.done]
            ready = wait([w.conn for w in live] + [w.process.sentinel for w in live], timeout=POLL_SECONDS)
            for i, worker in enumerate(workers):
                if not worker.done and (worker.conn in ready or worker.process.sentinel in ready):
                    workers[i] = self._service(worker)
        return self.records

    def _feed(self, worker: _Worker) -> None:
        """The next case for this worker, or the sentinel when none is left."""
        if not self.todo:
            worker.case = None
            _send(worker, None)
            return
        worker.case, worker.started = self.todo.pop(0), False
        case = self.cases[worker.case]
        _send(worker, (worker.case, case))
        self.observer.case_started(len(self.cases) - len(self.pending), len(self.cases), case)

    def _service(self, worker: _Worker) -> _Worker:
        try:
            if worker.conn.poll():
                self._receive(worker, worker.conn.recv())
                return worker
        except (EOFError, OSError):
            pass  # the pipe broke with its process: handled below
        worker.process.join(timeout=1)
        if worker.process.exitcode is None:
            return worker  # alive, nothing to read yet
        return self._replace(worker)

    def _receive(self, worker: _Worker, message: tuple[Any, ...]) -> None:
        if message[0] == "started":
            worker.started = True
            self.observer.case_running(self.cases[message[1]], worker.process.pid)
            return
        self._finish(Record.model_validate(message[2]), message[1])
        self._feed(worker)

    def _replace(self, worker: _Worker) -> _Worker:
        code = worker.process.exitcode
        if worker.case is not None and worker.case in self.pending and not worker.started:
            self.todo.insert(0, worker.case)  # lost between cases: nothing of this case ran yet
        elif worker.case is not None and worker.case in self.pending:
            record = failed_record(self.cases[worker.case], self.options, self.store.run_id, "WorkerDied",
                                   f"the worker process running this case died ({_exit_reason(code)}); "
                                   "the suite went on with a fresh worker")
            self._finish(record, worker.case)
        elif worker.case is None:
            worker.done = True  # it exited after its sentinel
            return worker
        self.pool.restarts += 1
        if self.pool.restarts > len(self.cases) + len(self.pool.slots):
            raise WorkersKeepDying(f"{self.pool.restarts} worker processes died ({_exit_reason(code)}); "
                                   "run with --executor serial to see the error")
        fresh = self.pool._start(worker.slot, self.options, self.store.run_id)
        self._feed(fresh)
        return fresh

    def _finish(self, record: Record, index: int) -> None:
        self.store.append(record)
        self.observer.case_finished(record)
        self.pending.discard(index)
        self.records.append(record)


def _send(worker: _Worker, message: Any) -> None:
    try:
        worker.conn.send(message)
    except (BrokenPipeError, OSError):
        pass  # it died: its sentinel reports it on the next wait


class WorkersKeepDying(SftbenchError):
    """Every replacement worker died too."""


def _exit_reason(code: int) -> str:
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"


@dataclass(frozen=True)
class ExecutorChoice:
    """What `run` asked for: the executor's name and its knobs."""

    name: str = "auto"
    workers: Optional[int] = None
    devices: Optional[str] = None
    threads: Optional[int] = None  # torch CPU threads of each pool worker (serial: set by the caller)
    ray: RaySettings = RaySettings()

    @property
    def on_ray(self) -> bool:
        """Ray decides devices on its workers: the driver must not resolve one."""
        return self.name == "ray" or self.ray.address is not None


def pick_executor(choice: ExecutorChoice, device: torch.device,
                  recorded: Optional[dict[tuple[str, str], float]] = None) -> Executor:
    """`auto`: pool when several GPUs are visible (or --workers/--devices asks for one), else serial.
    `recorded` wall times order the pool's and Ray's cases longest first."""
    if choice.name not in ("auto", "serial", "pool", "ray"):
        raise ConfigError(f"--executor {choice.name!r} is unknown; use serial, pool, ray or auto")
    if choice.on_ray:
        return RayExecutor(choice.ray, recorded).run
    gpus = torch.cuda.device_count() if device.type == "cuda" else 0
    wants_pool = choice.name == "pool" or (choice.name == "auto" and (gpus > 1 or choice.workers or choice.devices))
    if not wants_pool:
        return run_serial
    if device.type == "cuda":
        return Pool(gpu_slots(_devices(choice.devices, gpus)), recorded).run
    return Pool(cpu_slots(choice.workers or 2, choice.threads), recorded).run


def _devices(text: Optional[str], visible: int) -> list[int]:
    if text in (None, "all"):
        return list(range(visible))
    try:
        chosen = [int(d) for d in text.split(",")]
    except ValueError:
        chosen = []
    if not chosen or any(not 0 <= d < visible for d in chosen):
        raise ConfigError(f"--devices {text!r} is not a list of visible GPU indices (0 to {visible - 1}) "
                          "separated by commas; use for example 0,1 or all")
    return chosen

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
import queue
import signal
from dataclasses import dataclass, field
from typing import Any, Optional

import torch

from ..errors import ConfigError, SftbenchError
from ..results.record import Record
from ..results.store import Store
from ..suite.cases import Case
from .observer import Observer, SilentObserver
from .runner import RunOptions, failed_record, run_case, run_cases
from .schedule import estimate_seconds

POLL_SECONDS = 0.2


@dataclass(frozen=True)
class Slot:
    """Where one worker runs: its environment and its thread count."""

    env: dict[str, str] = field(default_factory=dict)
    threads: Optional[int] = None


def cpu_slots(workers: int) -> list[Slot]:
    cores = os.cpu_count() or 1
    return [Slot(threads=max(1, cores // workers)) for _ in range(workers)]


def gpu_slots(devices: list[int]) -> list[Slot]:
    return [Slot(env={"CUDA_VISIBLE_DEVICES": str(d)}) for d in devices]


def run_serial(cases: list[Case], store: Store, options: RunOptions, observer: Observer = SilentObserver(),
               resume: bool = False) -> list[Record]:
    return run_cases(cases, store, options, observer, resume)


def _worker(slot: Slot, options: RunOptions, run_id: str, tasks: Any, results: Any) -> None:
    """A worker process: take cases until the sentinel, report each start and each record."""
    os.environ.update(slot.env)
    if slot.threads:
        torch.set_num_threads(slot.threads)
    device = torch.device("cuda:0") if options.device.type == "cuda" else options.device  # its one visible GPU
    local = RunOptions(device, options.data_root, options.suite_dir)
    while True:
        task = tasks.get()
        if task is None:
            return
        index, case = task
        results.put(("started", index, os.getpid()))
        record = run_case(case, local, run_id)
        results.put(("done", index, record.to_json_dict()))


@dataclass
class _Worker:
    process: Any
    slot: Slot
    case: Optional[int] = None  # index of the case it is running


class Pool:
    """One process per slot; cases longest first; deaths recorded, workers replaced."""

    def __init__(self, slots: list[Slot]):
        self.slots = slots
        self.context = mp.get_context("spawn")  # fork after torch has threads can deadlock
        self.restarts = 0

    def run(self, cases: list[Case], store: Store, options: RunOptions, observer: Observer = SilentObserver(),
            resume: bool = False) -> list[Record]:
        done_keys = store.finished_keys() if resume else set()
        todo = []
        for index, case in enumerate(cases):
            if (case.run_key, case.spec_hash) in done_keys:
                observer.case_skipped(case)
            else:
                todo.append(index)
        todo.sort(key=lambda i: (-estimate_seconds(cases[i]), cases[i].run_key))  # LPT
        tasks, results = self.context.Queue(), self.context.Queue()
        for index in todo:
            tasks.put((index, cases[index]))
        workers = [self._start(slot, options, store.run_id, tasks, results) for slot in self.slots]
        try:
            return self._collect(cases, set(todo), workers, store, options, observer, (tasks, results))
        finally:
            for worker in workers:
                if worker.process.is_alive():
                    worker.process.terminate()
                worker.process.join(timeout=5)

    def _start(self, slot: Slot, options: RunOptions, run_id: str, tasks: Any, results: Any) -> _Worker:
        process = self.context.Process(target=_worker, args=(slot, options, run_id, tasks, results), daemon=True)
        process.start()
        return _Worker(process, slot)

    def _collect(self, cases: list[Case], pending: set[int], workers: list[_Worker], store: Store,
                 options: RunOptions, observer: Observer, queues: tuple[Any, Any]) -> list[Record]:
        tasks, results = queues
        records: list[Record] = []
        for _ in workers:
            tasks.put(None)  # one sentinel per worker, behind every case
        while pending:
            try:
                kind, index, payload = results.get(timeout=POLL_SECONDS)
            except queue.Empty:
                self._replace_dead(cases, pending, workers, store, options, observer, queues, records)
                continue
            if kind == "started":
                self._assign(workers, payload, index)
                observer.case_started(len(cases) - len(pending), len(cases), cases[index])
                getattr(observer, "case_assigned", lambda case, pid: None)(cases[index], payload)
            else:
                self._assign(workers, None, index)
                records.append(self._finish(Record.model_validate(payload), store, observer, pending, index))
        return records

    @staticmethod
    def _assign(workers: list[_Worker], pid: Optional[int], index: int) -> None:
        for worker in workers:
            if pid is not None and worker.process.pid == pid:
                worker.case = index
            elif pid is None and worker.case == index:
                worker.case = None

    @staticmethod
    def _finish(record: Record, store: Store, observer: Observer, pending: set[int], index: int) -> Record:
        store.append(record)
        observer.case_finished(record)
        pending.discard(index)
        return record

    def _replace_dead(self, cases: list[Case], pending: set[int], workers: list[_Worker], store: Store,
                      options: RunOptions, observer: Observer, queues: tuple[Any, Any], records: list[Record]) -> None:
        for i, worker in enumerate(workers):
            code = worker.process.exitcode
            if code is None or code == 0:
                continue
            if worker.case is not None and worker.case in pending:
                case = cases[worker.case]
                record = failed_record(case, options, store.run_id, "WorkerDied",
                                       f"the worker process running this case died ({_exit_reason(code)}); "
                                       "the suite went on with a fresh worker")
                records.append(self._finish(record, store, observer, pending, worker.case))
            worker.process.join(timeout=1)
            self.restarts += 1
            if self.restarts > len(cases) + len(workers):  # workers die before any case: stop, say why
                raise WorkersKeepDying(f"{self.restarts} worker processes died ({_exit_reason(code)}); "
                                       "run with --executor serial to see the error")
            workers[i] = self._start(worker.slot, options, store.run_id, *queues)
            queues[0].put(None)  # the dead worker's sentinel may be gone with it


class WorkersKeepDying(SftbenchError):
    """Every replacement worker died too."""


def _exit_reason(code: int) -> str:
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"


def pick_executor(name: str, device: torch.device, workers: Optional[int], devices: Optional[str]) -> Any:
    """`auto`: pool when several GPUs are visible (or --workers/--devices asks for one), else serial."""
    if name not in ("auto", "serial", "pool"):
        raise ConfigError(f"--executor {name!r} is unknown; use serial, pool or auto")
    gpus = torch.cuda.device_count() if device.type == "cuda" else 0
    wants_pool = name == "pool" or (name == "auto" and (gpus > 1 or workers or devices))
    if not wants_pool:
        return run_serial
    if device.type == "cuda":
        chosen = list(range(gpus)) if devices in (None, "all") else [int(d) for d in devices.split(",")]
        return Pool(gpu_slots(chosen)).run
    return Pool(cpu_slots(workers or 2)).run

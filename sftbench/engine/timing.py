"""Disciplined clocks: synchronise the device before every read; peak memory per case."""
from __future__ import annotations

import resource
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


class Stopwatch:
    """Accumulates device-synchronised seconds and samples over any number of timed windows."""

    def __init__(self, device: torch.device):
        self.device = device
        self.seconds = 0.0
        self.samples = 0
        self.windows: list[float] = []  # samples/s of each timed window: the case's own noise band
        self._started: float | None = None

    def start(self) -> None:
        synchronize(self.device)
        self._started = time.perf_counter()

    def stop(self, samples: int) -> None:
        """End the current window (of `samples` samples); nothing happens when none is open."""
        if self._started is None:
            return
        synchronize(self.device)
        elapsed = time.perf_counter() - self._started
        self.seconds += elapsed
        self.samples += samples
        if samples and elapsed > 0:
            self.windows.append(samples / elapsed)
        self._started = None

    def lap(self, samples: int) -> None:
        """End the current window and start the next one at once."""
        self.stop(samples)
        self.start()

    @property
    def running(self) -> bool:
        return self._started is not None

    @property
    def throughput(self) -> float | None:
        return self.samples / self.seconds if self.seconds > 0 else None


class FetchClock:
    """Host seconds spent waiting for the next training batch, per timing window: the data path's own
    speed. The data path is a small share of a step, so a data path twice as slow barely moves train
    throughput; its own samples/s shows it. On CUDA this is the host's wait (asynchronous transforms
    count in the step), which is where a loader-bound pipeline stalls."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.samples = 0
        self.windows: list[float] = []
        self._open = (0.0, 0)

    def add(self, seconds: float, samples: int) -> None:
        self._open = (self._open[0] + seconds, self._open[1] + samples)

    def close(self) -> None:
        """End the current window (with the train clock's)."""
        seconds, samples = self._open
        if samples and seconds > 0:
            self.windows.append(samples / seconds)
            self.seconds += seconds
            self.samples += samples
        self._open = (0.0, 0)

    @property
    def throughput(self) -> float | None:
        return self.samples / self.seconds if self.seconds > 0 else None


def timed_fetches(batches: Iterator[Any]) -> Iterator[tuple[torch.Tensor, torch.Tensor, float]]:
    """(x, y, seconds the host waited for them): what FetchClock adds up."""
    it = iter(batches)
    while True:
        start = time.perf_counter()
        try:
            x, y = next(it)
        except StopIteration:
            return
        yield x, y, time.perf_counter() - start


_CLEAR_REFS = Path("/proc/self/clear_refs")


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    elif _CLEAR_REFS.exists():
        try:
            _CLEAR_REFS.write_text("5")  # Linux: reset the process's peak RSS (VmHWM)
        except OSError:
            pass


def peak_memory(device: torch.device) -> dict[str, float | str]:
    """CUDA: max allocated by tensors. CPU: the process's peak RSS since the last reset."""
    if device.type == "cuda":
        return {"peak_mb": torch.cuda.max_memory_allocated(device) / 2**20, "kind": "cuda_max_allocated"}
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return {"peak_mb": int(line.split()[1]) / 1024, "kind": "process_peak_rss"}
    return {"peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "kind": "process_peak_rss_lifetime"}


class MemoryMeter:
    """Steady-state and cold peak memory of one case.

    The cold peak covers everything, including first steps that allocate cuDNN autotuning
    workspaces and compile caches, so it depends on what ran before in the process. The steady
    peak is reset after each phase's warm-up (`warm`) and is what verdicts gate on.
    """

    def __init__(self, device: torch.device, reader: Callable[[], float] | None = None,
                 resetter: Callable[[], None] | None = None):
        self.device = device
        self._read = reader or (lambda: float(peak_memory(device)["peak_mb"]))
        self._reset = resetter or (lambda: reset_peak_memory(device))
        self.cold = self.steady = 0.0
        self._in_steady = False

    def start(self) -> None:
        self._reset()
        self.cold = self.steady = 0.0
        self._in_steady = False

    def warm(self) -> None:
        """A phase's warm-up is over: what it allocated counts as cold; the steady window opens."""
        self._close_window()
        self._in_steady = True

    def new_phase(self) -> None:
        """A new phase (evaluation) begins with its own warm-up: close the steady window."""
        self._close_window()
        self._in_steady = False

    def _close_window(self) -> None:
        peak = self._read()
        self.cold = max(self.cold, peak)
        if self._in_steady:
            self.steady = max(self.steady, peak)
        self._reset()

    def result(self) -> dict[str, float | str | None]:
        self._close_window()
        kind = peak_memory(self.device)["kind"]
        steady = self.steady if self.steady > 0 else None
        return {"peak_mb": steady if steady is not None else self.cold, "cold_peak_mb": self.cold,
                "steady": steady is not None, "kind": kind}

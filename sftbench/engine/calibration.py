"""How fast is this machine right now? A fixed reference workload that runs outside the code under test.

The workload is a float32 GEMM and a memory-bandwidth copy in numpy (its own BLAS, not torch's
kernels, sftbench or timm), with numpy's BLAS limited to the threads torch trains with, plus on
a GPU one fixed bf16 matmul. A slower backward pass, data path or optimizer step therefore leaves
the calibration unchanged and is judged; a slower or busier machine moves both and is recognised.

Each process measures once before its first case and once after every case, so every record is
bracketed by two readings (`before`, `after`) taken in the same process, with the same threads,
next to whatever the case ran beside. `SFTBENCH_CALIBRATION=quick` shrinks the workload (tests);
`off` skips it (the record then carries none and its speed is not judged).
"""
from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import torch
from threadpoolctl import threadpool_limits

WORKLOAD = "numpy-sgemm{n}x{gi}-copy{mb}MBx{ci}-q75-v2"
# GEMM side and GEMMs per timing, copy size and copies per timing, timings: about 1 s in all on
# a 2-core EPYC (each timing ~45 ms); `quick` takes ~10 ms
SIZES = {"full": (1024, 4, 64, 6, 11), "quick": (128, 2, 2, 2, 3)}


@dataclass(frozen=True)
class Workload:
    gemm_n: int
    gemm_inner: int
    copy_mb: int
    copy_inner: int
    repeats: int

    @property
    def name(self) -> str:
        return WORKLOAD.format(n=self.gemm_n, gi=self.gemm_inner, mb=self.copy_mb, ci=self.copy_inner)


def configured_workload() -> Optional[Workload]:
    mode = os.environ.get("SFTBENCH_CALIBRATION", "full")
    if mode == "off":
        return None
    return Workload(*SIZES.get(mode, SIZES["full"]))


def _steady_rate(work: Callable[[], None], units: float, repeats: int) -> tuple[float, float]:
    """(upper-quartile units per second, interquartile spread / that rate) over `repeats` timings.

    The upper quartile, not the median: a VM's momentary stalls (measured: single timings at half
    speed on a quiet machine) drag the median around, while a neighbour that runs throughout
    lowers every timing, the best ones included."""
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        rates.append(units / max(time.perf_counter() - start, 1e-9))
    low, _, high = statistics.quantiles(rates, n=4, method="inclusive")
    return high, (high - low) / high


def _repeat(work: Callable[[], Any], times: int) -> None:
    for _ in range(times):
        work()


def _gpu_tflops(device: torch.device, repeats: int) -> Optional[float]:
    """A fixed 4096^2 bf16 matmul on the device, timed with CUDA events (None off CUDA)."""
    if device.type != "cuda":
        return None
    n = 4096
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b  # warm-up: cuBLAS picks its kernel
    rates = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(10):
            a @ b
        end.record()
        end.synchronize()
        rates.append(10 * 2 * n**3 / (start.elapsed_time(end) / 1e3) / 1e12)
    return round(statistics.quantiles(rates, n=4, method="inclusive")[2], 2)


def measure(device: torch.device, workload: Workload, threads: Optional[int] = None) -> dict[str, Any]:
    """One reading: GEMM GFLOP/s and copy GB/s (upper quartiles of repeats), their spreads, the GPU's."""
    rng = np.random.default_rng(0)
    n = workload.gemm_n
    a, b = rng.standard_normal((n, n), dtype=np.float32), rng.standard_normal((n, n), dtype=np.float32)
    src = np.ones(workload.copy_mb * 2**20 // 4, dtype=np.float32)
    dst = np.empty_like(src)
    with threadpool_limits(limits=threads or torch.get_num_threads(), user_api="blas"):
        _repeat(lambda: a @ b, 2 * workload.gemm_inner)  # warm-up: BLAS threads, pages, clocks
        _repeat(lambda: np.copyto(dst, src), workload.copy_inner)
        gflops, gemm_spread = _steady_rate(lambda: _repeat(lambda: a @ b, workload.gemm_inner),
                                           workload.gemm_inner * 2 * n**3 / 1e9, workload.repeats)
        gbps, copy_spread = _steady_rate(lambda: _repeat(lambda: np.copyto(dst, src), workload.copy_inner),
                                         workload.copy_inner * 2 * src.nbytes / 1e9, workload.repeats)
    return {"gemm_gflops": round(gflops, 2), "copy_gbps": round(gbps, 2),
            "spread": round(max(gemm_spread, copy_spread), 4), "gpu_tflops": _gpu_tflops(device, workload.repeats)}


class Calibrator:
    """The process's readings: `before` is the last one taken, `after()` takes the next."""

    def __init__(self, measure_fn: Callable[[torch.device, Workload], dict[str, Any]] = measure):
        self._measure = measure_fn
        self._last: dict[tuple[str, int], dict[str, Any]] = {}

    def bracket(self, device: torch.device) -> Optional[Callable[[], dict[str, Any]]]:
        """Take (or reuse) the reading before a case; the returned callable takes the one after it
        and gives the record's calibration."""
        workload = configured_workload()
        if workload is None:
            return None
        key = (str(device), torch.get_num_threads())  # a new thread count is a new machine
        if key not in self._last:  # a fresh process's first reading runs slow (measured: 0.8x): discard it
            self._measure(device, workload)
        before = self._last.get(key) or self._measure(device, workload)

        def after() -> dict[str, Any]:
            reading = self._last[key] = self._measure(device, workload)
            return {"workload": workload.name, "threads": key[1], "before": before, "after": reading}

        return after


PROCESS_CALIBRATOR = Calibrator()

"""CPU memory allocation held steady while cases are timed (glibc's malloc thresholds fixed).

glibc's malloc moves its mmap threshold as large blocks are freed, so whether a batch's activations
come from reused heap memory or from freshly mapped, page-faulting memory depends on what the
process did before. On a 2-core VM this made eval throughput of unchanged runs differ by up to 2.4x
between runs while steady within each (docs/verdicts.md): noise no number of windows can average out.
Fixing the mmap and trim thresholds makes every process allocate alike, and faster (peak RSS 1-10 %
higher). `SFTBENCH_MALLOC=system` keeps glibc's own behaviour. The mode is part of the
hardware fingerprint: speeds measured under the two modes are not compared.
"""
from __future__ import annotations

import ctypes
import functools
import os
import platform

from .errors import ConfigError

MODE_ENV = "SFTBENCH_MALLOC"
MODES = ("steady", "system")
STEADY = "glibc-steady"
SYSTEM = "system"
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameters, from glibc's <malloc.h>
_THRESHOLD = 1 << 30  # 1 GiB: blocks below it come from the heap, and the heap's top is kept


def allocator_mode() -> str:
    """The allocation mode this process times under: `glibc-steady`, or `system` when asked for
    or when the C library is not glibc (macOS, musl, Windows)."""
    requested = os.environ.get(MODE_ENV, "steady").strip().lower() or "steady"
    if requested not in MODES:
        raise ConfigError(f"{MODE_ENV}={requested!r} is not a mode; use steady (the default) or system")
    return STEADY if requested == "steady" and _is_glibc() else SYSTEM


def steady_allocation() -> str:
    """Apply the mode (once per process; later calls only report it) and return its name."""
    mode = allocator_mode()
    if mode == STEADY:
        _fix_thresholds()
    return mode


@functools.lru_cache(maxsize=1)
def _fix_thresholds() -> None:
    libc = ctypes.CDLL("libc.so.6")
    libc.mallopt(_M_MMAP_THRESHOLD, _THRESHOLD)  # also stops glibc moving the threshold
    libc.mallopt(_M_TRIM_THRESHOLD, _THRESHOLD)


@functools.lru_cache(maxsize=1)
def _is_glibc() -> bool:
    return platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"

"""Preflight: every static requirement of a run, checked before the first case trains.

Each problem is one sentence; all of them are reported together, so a suite with three broken
entries costs one edit, not three failed nights.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from ..backbones.weights import check_weights
from ..data.splits import check_dataset
from ..errors import SftbenchError
from ..paths import check_safe_name
from ..results.store import check_writable
from ..strategies.lookup import resolve
from ..suite.cases import Case
from .device import device_for_suite, parse_device


@dataclass(frozen=True)
class RunTarget:
    """Where and how a run will happen: what preflight checks besides the cases."""

    suite: str
    requires_gpu: bool
    device: str
    out_dir: Path
    run_id: Optional[str]  # None: a fresh timestamp, safe by construction
    data_root: Optional[str] = None
    on_workers: bool = False  # Ray: the device, weights and data are checked on the worker running each case


@dataclass
class PreflightReport:
    problems: list[str]
    checks: int
    seconds: float


def preflight(cases: list[Case], target: RunTarget) -> PreflightReport:
    start, problems, checks = time.perf_counter(), [], 0

    def attempt(check: Callable[[], Any]) -> None:
        nonlocal checks
        checks += 1
        try:
            check()
        except SftbenchError as err:
            problems.append(str(err))

    if target.on_workers:  # only the name: whether the device exists is each worker's to say
        attempt(lambda: parse_device(target.device))
    else:
        attempt(lambda: device_for_suite(target.suite, target.requires_gpu, target.device))
    if target.run_id is not None:
        attempt(lambda: check_safe_name(target.run_id, "run id"))
    attempt(lambda: check_writable(target.out_dir / target.suite))
    if not target.on_workers:
        for backbone in _distinct(c.backbone for c in cases):
            attempt(lambda: check_weights(backbone))
        for dataset in _distinct(c.dataset for c in cases):
            attempt(lambda: check_dataset(dataset, target.data_root))
    for name in dict.fromkeys(c.strategy.name for c in cases):
        attempt(lambda: resolve(name))
    return PreflightReport(list(dict.fromkeys(problems)), checks, time.perf_counter() - start)


def _distinct(specs: Iterable[Any]) -> list[Any]:
    """One of each spec (pydantic models compare by value but do not hash)."""
    seen: dict[str, Any] = {}
    for spec in specs:
        seen.setdefault(spec.model_dump_json(), spec)
    return list(seen.values())

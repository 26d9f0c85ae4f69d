"""Pool result records into one summary per case (all seeds), the unit baselines and verdicts use."""
from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Optional

from pydantic import BaseModel, ConfigDict

from ..errors import SftbenchError
from ..results.record import Environment, Labels, PerExample, Record
from ..results.selection import latest_per_run_key


def mean_std(values: list[float]) -> tuple[Optional[float], Optional[float]]:
    if not values:
        return None, None
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else None)


def median(values: list[float]) -> Optional[float]:
    return statistics.median(values) if values else None


class RunSpeed(BaseModel):
    """One case's speed in one run (medians over its seeds) and the machine's calibration around it:
    the unit that speed verdicts compare, since timing windows of one run say nothing about the next."""

    model_config = ConfigDict(extra="ignore")
    run_id: str
    train_samples_per_s: Optional[float] = None
    eval_samples_per_s: Optional[float] = None
    data_samples_per_s: Optional[float] = None  # the image data path's own speed (absent before 2026-12-06)
    peak_mb: Optional[float] = None
    workload: Optional[str] = None  # the calibration workload's name; None: the run was not calibrated
    gemm_gflops: Optional[float] = None  # calibration: the lower of the readings before and after the case
    copy_gbps: Optional[float] = None
    gpu_tflops: Optional[float] = None
    drift: Optional[float] = None  # largest |after / before - 1| of a calibration part (information)
    fingerprint_digest: Optional[str] = None

    def metric(self, name: str) -> Optional[float]:
        return {"train_throughput": self.train_samples_per_s, "eval_throughput": self.eval_samples_per_s,
                "data_throughput": self.data_samples_per_s, "peak_memory": self.peak_mb}[name]

    def calibration(self) -> dict[str, float]:
        parts = {"gemm_gflops": self.gemm_gflops, "copy_gbps": self.copy_gbps, "gpu_tflops": self.gpu_tflops}
        return {k: v for k, v in parts.items() if v is not None}


@dataclass
class CaseSummary:
    case_id: str
    spec_hash: str
    hardware_key: str
    accuracy: dict[int, float] = field(default_factory=dict)  # seed -> top-1
    train_throughput: list[float] = field(default_factory=list)
    eval_throughput: list[float] = field(default_factory=list)
    peak_mb: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # one per failed seed
    per_example: dict[int, PerExample] = field(default_factory=dict)  # seed -> correctness bits
    train_windows: list[float] = field(default_factory=list)  # samples/s per timing window, all seeds
    eval_windows: list[float] = field(default_factory=list)
    test_n: Optional[int] = None  # examples in the test split
    env: Optional[Environment] = None
    labels: Optional[Labels] = None
    runs: list[RunSpeed] = field(default_factory=list)  # one per run that finished the case, in order
    sweep_point: dict[str, Any] = field(default_factory=dict)  # a chosen sweep point's values of the keys chosen over

    @property
    def failed(self) -> bool:
        return bool(self.errors)

    @property
    def accuracy_values(self) -> list[float]:
        return [self.accuracy[s] for s in sorted(self.accuracy)]


def _sweep_point(record: Record) -> dict[str, Any]:
    over = (record.spec.get("select") or {}).get("over", [])
    return {k: v for k, v in record.spec.get("sweep", {}).items() if k in over}


def summarise(records: Iterable[Record]) -> dict[str, CaseSummary]:
    """case_id -> summary over the latest record of every seed."""
    records = list(records)
    summaries: dict[str, CaseSummary] = {}
    for r in latest_per_run_key(records):
        s = summaries.get(r.case_id)
        if s is None:
            s = summaries[r.case_id] = CaseSummary(r.case_id, r.spec_hash, r.hardware_key, env=r.env, labels=r.labels,
                                                   sweep_point=_sweep_point(r))
        if r.spec_hash != s.spec_hash:
            raise SftbenchError(
                f"results for case {r.case_id!r} mix two suite definitions (spec hashes {s.spec_hash} and "
                f"{r.spec_hash}); pass the results of one run or re-run the old seeds"
            )
        if not r.ok or r.metrics is None or r.throughput is None:
            s.errors.append(f"seed {r.seed}: {r.error_message}")
            continue
        s.accuracy[r.seed] = r.metrics.top1
        if r.per_example is not None:
            s.per_example[r.seed] = r.per_example
        s.test_n = r.dataset.sizes.get("test") if r.dataset else s.test_n
        s.eval_windows += r.throughput.eval_windows
        train_speed = _train_speed(r)
        for target, value in ((s.train_throughput, train_speed),
                              (s.eval_throughput, r.throughput.eval_samples_per_s),
                              (s.peak_mb, r.memory.peak_mb if r.memory else None)):
            if value is not None:
                target.append(value)
        if train_speed is not None:
            s.train_windows += r.throughput.train_windows
    for case_id, runs in run_speeds(records).items():
        if case_id in summaries:
            summaries[case_id].runs = runs
    return summaries


def _train_speed(r: Record) -> Optional[float]:
    """None for a probe on cached features: it times only its head (about a millisecond)."""
    assert r.throughput is not None
    return None if r.throughput.train_path == "cached_features" else r.throughput.train_samples_per_s


def _steady(windows: list[float], overall: Optional[float]) -> Optional[float]:
    """A run's speed for comparison with other runs: its median timing window, so a momentary stall
    in one window does not move it (a slower step or data path slows every window)."""
    return statistics.median(windows) if windows and overall is not None else overall


def _run_speed(run_id: str, group: list[Record]) -> RunSpeed:
    def med(values: list[Optional[float]]) -> Optional[float]:
        present = [v for v in values if v is not None]
        return round(statistics.median(present), 3) if present else None

    cals = [r.env.calibration for r in group if r.env.calibration is not None]
    calibrated = len(cals) == len(group) and len({c.workload for c in cals}) == 1
    parts: dict[str, Optional[float]] = {}
    drift = 0.0
    for part in ("gemm_gflops", "copy_gbps", "gpu_tflops"):
        pairs = [(getattr(c.before, part), getattr(c.after, part)) for c in cals] if calibrated else []
        pairs = [(b, a) for b, a in pairs if b and a]
        parts[part] = med([min(b, a) for b, a in pairs])  # the slowest the machine was seen around the case
        drift = max([drift] + [abs(a / b - 1) for b, a in pairs])
    digests = {r.env.fingerprint_digest for r in group}
    ok = [(r, r.throughput) for r in group if r.throughput is not None]
    return RunSpeed(run_id=run_id, train_samples_per_s=med([_steady(t.train_windows, _train_speed(r)) for r, t in ok]),
                    eval_samples_per_s=med([_steady(t.eval_windows, t.eval_samples_per_s) for _, t in ok]),
                    data_samples_per_s=med([_steady(t.data_windows, t.data_samples_per_s) for _, t in ok]),
                    peak_mb=med([r.memory.peak_mb if r.memory else None for r in group]),
                    workload=cals[0].workload if calibrated else None, drift=round(drift, 4) if calibrated else None,
                    fingerprint_digest=digests.pop() if len(digests) == 1 else None, **parts)


def run_speeds(records: Iterable[Record]) -> dict[str, list[RunSpeed]]:
    """case_id -> one RunSpeed per run (the latest record of each seed within that run)."""
    groups: dict[tuple[str, str], dict[str, Record]] = {}
    for r in records:
        if r.ok and r.throughput is not None:
            groups.setdefault((r.case_id, r.run_id), {})[r.run_key] = r
    out: dict[str, list[RunSpeed]] = {}
    for (case_id, run_id), by_key in groups.items():
        out.setdefault(case_id, []).append(_run_speed(run_id, list(by_key.values())))
    return out

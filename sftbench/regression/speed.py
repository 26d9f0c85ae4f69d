"""Speed and memory verdicts between runs: judged only on the baseline's machine, against the spread
between the baseline's runs.

Two questions, in order:
1. Is this the baseline's machine, as fast as it was? The hardware fingerprint must match, and each
   part of the calibration (a fixed numpy GEMM and copy, plus a GPU matmul, measured next to every
   case) must be within the band of the baseline runs' median, and steady during the run. If not,
   speed is MACHINE-DIFFERS (neither a pass nor a regression) and the reason names both machines,
   or, with `beyond_band: normalise`, throughput is divided by the calibration's change and judged
   with a tolerance widened by that change.
2. Is the change beyond the noise between runs? On log speed: a one-sided t prediction interval
   with the between-run sd pooled over the baseline's cases, else an assumed sd, never below
   `rel_tol`. A run's speed is its median timing window.
   The timing windows of one run are not used: they cannot see the next run's machine state.
Memory depends on the machine but not on its load: it needs the fingerprint, not the calibration.
"""
from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Optional

from scipy import stats

from ..schema import RelativeThreshold, Thresholds, ThroughputThresholds
from .checks import MetricCheck, Status
from .stats import pooled_sd
from .summary import RunSpeed

SPEED_METRICS = ("train_throughput", "eval_throughput", "data_throughput")
OPTIONAL_METRICS = {"data_throughput"}  # judged only where the baseline measured it (newer baselines, image paths)
RELATIVE_RESOLUTION = 1e-3  # baselines are rounded: ignore sub-0.1 % differences
PART_NAMES = {"gemm_gflops": "GEMM GFLOP/s", "copy_gbps": "copy GB/s", "gpu_tflops": "GPU TFLOP/s"}


@dataclass(frozen=True)
class Machine:
    """Where the runs on one side were measured."""

    hardware_key: str
    runs: Sequence[RunSpeed]
    fingerprint: Optional[dict[str, Any]] = None

    def calibration(self) -> dict[str, float]:
        """Each calibration part's median over the runs."""
        parts: dict[str, list[float]] = {}
        for run in self.runs:
            for part, value in run.calibration().items():
                parts.setdefault(part, []).append(value)
        return {part: statistics.median(values) for part, values in parts.items()}

    @property
    def digests(self) -> set[Optional[str]]:
        return {r.fingerprint_digest for r in self.runs}


def _fingerprint_change(base: Optional[dict[str, Any]], cur: Optional[dict[str, Any]]) -> str:
    """The fields that differ, as `cpu.model 17 -> 1` (flattened one level)."""
    def flat(d: Optional[dict[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in (d or {}).items():
            if isinstance(value, dict):
                out.update({f"{key}.{k}": v for k, v in value.items()})
            else:
                out[key] = value
        return out

    b, c = flat(base), flat(cur)
    changed = [f"{k} {b.get(k)} -> {c.get(k)}" for k in sorted(set(b) | set(c)) if b.get(k) != c.get(k)]
    return ", ".join(changed[:4]) or "details unknown"


def calibration_ratio(base: Machine, cur: Machine) -> dict[str, float]:
    """current / baseline for each calibration part both sides measured."""
    b, c = base.calibration(), cur.calibration()
    return {part: c[part] / b[part] for part in b if part in c and b[part] > 0}


def machine_difference(base: Machine, cur: Machine, t: ThroughputThresholds) -> Optional[str]:
    """Why speed cannot be compared as measured, or None when the machine is the baseline's."""
    if base.hardware_key != cur.hardware_key:
        details = f" ({_fingerprint_change(base.fingerprint, cur.fingerprint)})" if base.fingerprint and cur.fingerprint else ""
        return f"measured on {cur.hardware_key!r}, baseline from {base.hardware_key!r}{details}"
    if not base.runs or base.digests == {None} or any(r.workload is None for r in base.runs):
        return "the baseline holds no machine calibration (blessed by an older sftbench); bless it again to judge speed"
    if cur.digests == {None} or any(r.workload is None for r in cur.runs):
        return "this run was not calibrated (SFTBENCH_CALIBRATION=off or an older sftbench)"
    if base.digests != cur.digests:
        return f"another machine under the same key: {_fingerprint_change(base.fingerprint, cur.fingerprint)}"
    if {r.workload for r in base.runs} != {r.workload for r in cur.runs}:
        return "the calibration workload changed; bless the baseline again"
    return calibration_difference(base, cur, t.calibration_band)


def calibration_difference(base: Machine, cur: Machine, band: float) -> Optional[str]:
    ratios = calibration_ratio(base, cur)
    outside = {p: r for p, r in ratios.items() if abs(math.log(r)) > math.log1p(band)}
    if not outside:
        return None
    b, c = base.calibration(), cur.calibration()
    parts = "; ".join(f"{PART_NAMES[p]} {c[p]:.1f} now vs {b[p]:.1f} at bless ({100 * (r - 1):+.0f} %)"
                      for p, r in outside.items())
    return f"the machine is not as fast as when blessed: {parts}, beyond the ±{100 * band:.0f} % band"


@dataclass(frozen=True)
class RunNoise:
    """The spread of log speed between a baseline's runs, pooled over its cases: the machine's
    run-to-run noise is largely shared by the cases, and three runs of one case estimate it poorly."""

    sd: float
    dof: int
    cases: int


def between_run_noise(case_runs: Iterable[Sequence[RunSpeed]], metric: str) -> Optional[RunNoise]:
    logs = [[math.log(v) for r in runs if (v := r.metric(metric)) is not None and v > 0] for runs in case_runs]
    pooled = pooled_sd(logs)
    return RunNoise(pooled[0], pooled[1], sum(len(g) > 1 for g in logs)) if pooled else None


def log_tolerance(base: Sequence[float], current_runs: int, t: RelativeThreshold,
                  noise: Optional[RunNoise] = None) -> tuple[float, str]:
    """The largest log-change that is noise: a one-sided t prediction interval for the mean of
    `current_runs` new runs around the mean of the case's n baseline runs, with the pooled
    between-run sd; with no baseline case of two runs, the assumed sd (normal); >= rel_tol."""
    n = len(base)
    if noise is not None:
        width = stats.t.isf(t.alpha, noise.dof) * noise.sd * math.sqrt(1 / n + 1 / current_runs)
        source = (f"between-run sd {100 * noise.sd:.1f} % from {noise.cases} case(s)' baseline runs, "
                  f"{noise.dof} dof, {n} run(s) of this case")
    else:
        width = stats.norm.isf(t.alpha) * t.assumed_run_sd * math.sqrt(1 / n + 1 / current_runs)
        source = f"no baseline case has two runs: assumed between-run sd {100 * t.assumed_run_sd:.0f} %"
    floor = -math.log1p(-min(t.rel_tol, 0.99))
    return max(floor, width), source


def between_runs_check(metric: str, base_runs: Sequence[RunSpeed], cur_runs: Sequence[RunSpeed],
                       t: RelativeThreshold, higher_is_better: bool, noise: Optional[RunNoise] = None,
                       scale: float = 1.0, widen: float = 0.0, note: str = "") -> MetricCheck:
    """One metric, baseline runs vs current runs; `scale` divides the current values (normalised
    throughput) and `widen` adds to the log tolerance."""
    base = [v for r in base_runs if (v := r.metric(metric)) is not None and v > 0]
    cur = [v / scale for r in cur_runs if (v := r.metric(metric)) is not None and v > 0]
    if not base or not cur:
        return MetricCheck(metric, None, None, Status.SKIPPED, f"{metric}: missing on one side")
    b_center = math.exp(statistics.fmean(math.log(v) for v in base))
    c_center = math.exp(statistics.fmean(math.log(v) for v in cur))
    tolerance, source = log_tolerance(base, len(cur), t, noise)
    tolerance += widen
    change = math.log(c_center / b_center)
    better = change if higher_is_better else -change
    rel = math.expm1(tolerance)
    text = (f"{metric} {100 * math.expm1(change):+.1f}%{note} (tolerance {100 * rel:.1f}%: {source}, "
            f"floor {100 * t.rel_tol:.0f}%)")
    if better < -tolerance:
        status = Status.REGRESSED
    elif better > tolerance:
        status = Status.IMPROVED
    else:
        status = Status.NOISE if better < -RELATIVE_RESOLUTION else Status.PASS
    return MetricCheck(metric, b_center, c_center, status, text, rel, test="between-runs")


Noise = dict[str, Optional[RunNoise]]  # metric -> the baseline's pooled between-run noise


def baseline_noise(case_runs: Sequence[Sequence[RunSpeed]]) -> Noise:
    return {m: between_run_noise(case_runs, m) for m in (*SPEED_METRICS, "peak_memory")}


def judged_metrics(base_runs: Sequence[RunSpeed]) -> list[str]:
    """Train and eval throughput always (a missing side is SKIPPED, named); the data path's only where
    the baseline measured it, so a baseline blessed before it existed reads as it did."""
    return [m for m in SPEED_METRICS if m not in OPTIONAL_METRICS or any(r.metric(m) for r in base_runs)]


def speed_checks(base: Machine, cur: Machine, t: Thresholds, noise: Optional[Noise] = None) -> list[MetricCheck]:
    """Train and eval throughput, then peak memory: each judged, or MACHINE-DIFFERS with the reason.
    `noise` is the baseline's between-run noise (pooled over its cases); default: this case's own."""
    noise = noise if noise is not None else baseline_noise([base.runs])
    memory = _memory_check(base, cur, t, noise)
    metrics = judged_metrics(base.runs)
    differs = machine_difference(base, cur, t.throughput)
    if differs is None:
        return [between_runs_check(m, base.runs, cur.runs, t.throughput, True, noise[m])
                for m in metrics] + [memory]
    ratios = calibration_ratio(base, cur)
    fixable = t.throughput.beyond_band == "normalise" and ratios and differs.startswith("the machine is not as fast")
    if not fixable:
        return [MetricCheck(m, None, None, Status.MACHINE_DIFFERS, f"speed not judged: {differs}")
                for m in metrics] + [memory]
    part = "gpu_tflops" if "gpu_tflops" in ratios else "gemm_gflops"
    scale = ratios[part]
    note = f" normalised by {PART_NAMES[part]} ×{scale:.2f}"
    return [between_runs_check(m, base.runs, cur.runs, t.throughput, True, noise[m], scale, abs(math.log(scale)) / 2,
                               note) for m in metrics] + [memory]


def _memory_check(base: Machine, cur: Machine, t: Thresholds, noise: Noise) -> MetricCheck:
    if base.hardware_key != cur.hardware_key or (None not in base.digests and base.digests != cur.digests):
        return MetricCheck("peak_memory", None, None, Status.MACHINE_DIFFERS,
                           "memory not judged: measured on another machine")
    return between_runs_check("peak_memory", base.runs, cur.runs, t.memory, False, noise["peak_memory"])

"""Scheduling quality: makespan / lower bound for LPT vs round-robin, simulated (no training).

The lower bound is max(total / devices, longest case). Inputs: the recorded wall times of real
result files (if given) and synthetic heavy-tailed suites (Pareto, shape 1.5; and log-normal).

    python benchmarks/perf/scheduling.py [results.jsonl ...]
"""
from __future__ import annotations

import random
import sys
from dataclasses import dataclass

from sftbench.engine.schedule import lpt
from sftbench.results.store import read_records, result_files


@dataclass(frozen=True)
class Job:
    run_key: str


def ratios(times: dict[str, float], devices: int) -> tuple[float, float]:
    jobs = [Job(k) for k in times]  # listed in suite order, as round-robin would take them
    bound = max(sum(times.values()) / devices, max(times.values()))
    lpt_span = max(sum(times[j.run_key] for j in part) for part in lpt(jobs, times, devices))
    robin_span = max(sum(times[j.run_key] for j in jobs[d::devices]) for d in range(devices))
    return lpt_span / bound, robin_span / bound


def report(name: str, times: dict[str, float]) -> None:
    cells = []
    for devices in (2, 4, 8):
        ours, robin = ratios(times, devices)
        cells.append(f"{devices} dev: LPT {ours:.3f}  round-robin {robin:.3f}")
    print(f"{name:<44} ({len(times):>3} cases)  " + " | ".join(cells))


def main() -> None:
    print("makespan / lower bound (1.000 is optimal; target <= 1.1)")
    if len(sys.argv) > 1:
        records = [r for f in result_files(map(__import__("pathlib").Path, sys.argv[1:])) for r in read_records(f)]
        report("recorded: " + ", ".join(sys.argv[1:])[:34], {r.run_key: r.timings_s["total"] for r in records if r.ok})
    rng = random.Random(0)
    for size in (24, 144):
        report("synthetic Pareto(1.5), seed 0", {f"c{i}": rng.paretovariate(1.5) for i in range(size)})
        report("synthetic log-normal(0, 1), seed 0", {f"c{i}": rng.lognormvariate(0, 1) for i in range(size)})


if __name__ == "__main__":
    main()

"""Serial vs pool: fixed overhead per case and speed-up, on small CPU cases.

Overhead per case = (wall - sum of the cases' own wall times / workers) / cases: everything the
executor adds (process start, imports, queues, writing records).

    python benchmarks/perf/executor_overhead.py [--cases 8] [--workers 2]
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from sftbench.engine.executors import Pool, cpu_slots, run_serial
from sftbench.engine.runner import RunOptions
from sftbench.results.store import Store
from sftbench.suite.cases import expand
from sftbench.suite.loader import parse_suite

SUITE = {"name": "overhead", "defaults": {"epochs": 3, "batch_size": 16, "image_size": 32, "seeds": [0]},
         "matrix": {"backbones": [{"name": "test_efficientnet", "weights": "random"}],
                    "datasets": [{"name": "synthetic", "options": {"train": 256, "test": 64, "size": 16}}],
                    "strategies": ["full"]}}


def measure(name: str, execute, cases, workers: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.for_run(Path(tmp), "overhead", name)
        start = time.perf_counter()
        records = execute(cases, store, RunOptions(torch.device("cpu")))
        wall = time.perf_counter() - start
    own = sum(r.timings_s["total"] for r in records)
    return wall, (wall - own / workers) / len(cases)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--cases", type=int, default=8)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--epochs", type=int, default=3)
    args = p.parse_args()
    SUITE["defaults"]["seeds"] = list(range(args.cases))
    SUITE["defaults"]["epochs"] = args.epochs
    cases = expand(parse_suite(SUITE))
    torch.set_num_threads(1)  # the serial side on one core, as each pool worker
    rows: dict[str, list[tuple[float, float]]] = {"serial (1 thread)": [], f"pool ({args.workers} x 1 thread)": []}
    for _ in range(args.reps):  # alternated, medians reported
        rows["serial (1 thread)"].append(measure("serial", run_serial, cases, 1))
        rows[f"pool ({args.workers} x 1 thread)"].append(measure("pool", Pool(cpu_slots(args.workers)).run, cases,
                                                                 args.workers))
    serial_wall = statistics.median(w for w, _ in rows["serial (1 thread)"])
    print(f"{args.cases} cases of {args.epochs} epochs, {args.reps} alternated repetitions, medians")
    for name, values in rows.items():
        wall, overhead = statistics.median(w for w, _ in values), statistics.median(o for _, o in values)
        print(f"  {name:<24} wall {wall:6.2f} s   overhead/case {overhead:+.3f} s   speed-up {serial_wall / wall:.2f}x")


if __name__ == "__main__":
    main()

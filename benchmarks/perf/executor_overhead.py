"""Serial vs pool vs Ray (local, and a two-node cluster): fixed overhead per case and speed-up, on small
CPU cases.

Overhead per case = (wall - sum of the cases' own wall times / workers) / cases: everything the
executor adds (process start, imports, queues, writing records). Ray's row includes starting and
stopping the local Ray instance, as `sftbench run --executor ray` does without --ray-address. The
two-node row runs on a head and a worker node started on this machine (`ray start`, each with
workers/2 CPUs, the head without GPUs), as `--ray-address` joins a real cluster.

    python benchmarks/perf/executor_overhead.py [--cases 8] [--workers 2]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_AUTH_MODE", "token")  # as the test clusters: the nodes and this driver agree
import ray  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
from ray_nodes import LocalCluster  # noqa: E402

from sftbench.engine.executors import Pool, cpu_slots, run_serial  # noqa: E402
from sftbench.engine.ray_executor import RayExecutor  # noqa: E402
from sftbench.engine.runner import RunOptions  # noqa: E402
from sftbench.results.store import Store  # noqa: E402
from sftbench.suite.cases import expand  # noqa: E402
from sftbench.suite.loader import parse_suite  # noqa: E402

SUITE = {"name": "overhead", "defaults": {"epochs": 3, "batch_size": 16, "image_size": 32, "seeds": [0],
                                         "resources": {"cpus": 1}},
         "matrix": {"backbones": [{"name": "test_efficientnet", "weights": "random"}],
                    "datasets": [{"name": "synthetic", "options": {"train": 256, "test": 64, "size": 16}}],
                    "strategies": ["full"]}}


def measure(name: str, execute, cases, workers: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.for_run(Path(tmp), "overhead", name)
        start = time.perf_counter()
        records = execute(cases, store, RunOptions(torch.device("cpu")))
        wall = time.perf_counter() - start
    failed = [r for r in records if not r.ok]
    if failed:  # a timing of failed cases measures nothing
        raise SystemExit(f"{name}: {len(failed)} case(s) failed, first: {failed[0].error_message}")
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
    executors = {"serial (1 thread)": (run_serial, 1),
                 f"pool ({args.workers} x 1 thread)": (Pool(cpu_slots(args.workers)).run, args.workers),
                 f"ray (local, {args.workers} CPUs)": (RayExecutor().run, args.workers)}
    rows: dict[str, list[tuple[float, float]]] = {name: [] for name in executors}
    warm = f"ray (already running, {args.workers} CPUs)"  # a cluster's case: Ray start and stop not counted
    rows[warm] = []
    two_node = f"ray (two nodes, {args.workers // 2}+{args.workers - args.workers // 2} CPUs)"
    rows[two_node] = []
    cluster = LocalCluster()
    try:
        cluster.start_head(cpus=args.workers // 2)
        cluster.add_node(cpus=args.workers - args.workers // 2)
        for _ in range(args.reps):  # alternated, medians reported
            for name, (execute, workers) in executors.items():
                rows[name].append(measure(name.split()[0], execute, cases, workers))
            ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False)
            rows[warm].append(measure("ray-warm", RayExecutor().run, cases, args.workers))
            ray.shutdown()
            cluster.connect(ray)
            cluster.wait_for(ray, 2)
            rows[two_node].append(measure("ray-two-node", RayExecutor().run, cases, args.workers))
            ray.shutdown()
    finally:
        cluster.stop()
    serial_wall = statistics.median(w for w, _ in rows["serial (1 thread)"])
    print(f"{args.cases} cases of {args.epochs} epochs, {args.reps} alternated repetitions, medians")
    for name, values in rows.items():
        wall, overhead = statistics.median(w for w, _ in values), statistics.median(o for _, o in values)
        print(f"  {name:<32} wall {wall:6.2f} s   overhead/case {overhead:+.3f} s   speed-up {serial_wall / wall:.2f}x")


if __name__ == "__main__":
    main()

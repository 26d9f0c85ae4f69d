"""Which summary of a run's timing windows varies least between unchanged quiet runs, and how much
the machine calibration explains: the figures behind the speed verdict's choice of statistic.

    python benchmarks/verdicts/speed_noise.py OUT [--runs bless- aa-quiet-]

For every case and metric, over the runs whose id starts with one of `--runs`: the sd of log speed
between runs for each candidate statistic (overall samples/s, median window, upper-quartile window,
fastest window), the sd after dividing by the GEMM calibration, and the correlation of log speed
with log GEMM. Prints Markdown.
"""
from __future__ import annotations

import argparse
import math
import statistics
from collections import defaultdict
from pathlib import Path

import numpy as np

from sftbench.regression.summary import run_speeds
from sftbench.results.store import read_records

METRICS = {"train": ("train_samples_per_s", "train_windows"), "eval": ("eval_samples_per_s", "eval_windows"),
           "data": ("data_samples_per_s", "data_windows")}


def candidates(overall: float, windows: list[float]) -> dict[str, float]:
    w = sorted(windows)
    return {"overall": overall, "median window": statistics.median(w),
            "upper-quartile window": float(np.quantile(w, 0.75)), "fastest window": w[-1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--runs", nargs="+", default=["bless-", "aa-quiet-"])
    args = parser.parse_args()
    # (case, metric) -> statistic -> [log values]; and the run's GEMM calibration beside each
    values: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    gemm: dict[tuple[str, str], list[float]] = defaultdict(list)
    for path in sorted((args.out / "speed").glob("*.jsonl")):
        if not path.stem.startswith(tuple(args.runs)):
            continue
        records = list(read_records(path))
        run_gemm = {case: runs[0].gemm_gflops for case, runs in run_speeds(records).items()}  # the gate's reading
        for r in records:
            if not r.ok or r.throughput is None:
                continue
            g = run_gemm.get(r.case_id)
            for name, (total, windows) in METRICS.items():
                overall, w = getattr(r.throughput, total), getattr(r.throughput, windows)
                if not overall or not w or (name == "train" and r.throughput.train_path == "cached_features"):
                    continue
                for stat, v in candidates(overall, w).items():
                    values[(r.case_id, name)][stat].append(math.log(v))
                gemm[(r.case_id, name)].append(math.log(g) if g else float("nan"))
    stats_names = list(candidates(1.0, [1.0]))
    print("| case | metric | runs | " + " | ".join(f"sd {s}" for s in stats_names) +
          " | sd median / GEMM | corr(median, GEMM) |")
    print("|---|---|---:|" + "---:|" * (len(stats_names) + 2))
    for (case, metric), by_stat in sorted(values.items()):
        med = np.array(by_stat["median window"])
        g = np.array(gemm[(case, metric)])
        sds = [100 * statistics.stdev(by_stat[s]) for s in stats_names]
        normalised = 100 * statistics.stdev(med - g)
        corr = float(np.corrcoef(med, g)[0, 1])
        print(f"| {case.split('-mnist5k-')[-1]} | {metric} | {len(med)} | " + " | ".join(f"{s:.1f} %" for s in sds) +
              f" | {normalised:.1f} % | {corr:+.2f} |")


if __name__ == "__main__":
    main()

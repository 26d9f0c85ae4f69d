"""Which change-point search, and which penalty: measured on synthetic series (seconds).

Accuracy series: 30 runs of 3 seeds, seed sd 0.9 pp (the quickstart's pretrained full fine-tune);
speed series: 30 runs, between-run sd 6 % of log speed (the quickstart's train throughput).
For each search (ruptures PELT, binary segmentation) and penalty: false change points over 200
noise-only series per metric, and planted steps found within one run of where they were made.
Usage: python benchmarks/history/changepoint_choice.py
"""
from __future__ import annotations

import time

import numpy as np

import sftbench.history.changepoints as cp
from sftbench.history.series import ENV_FIELDS, RunPoint, Series

STEPS = (("top1", 20, -0.03), ("top1", 20, -0.015), ("top1", 20, -0.01),
         ("train_throughput", 12, -0.30), ("train_throughput", 12, -0.15), ("train_throughput", 12, -0.10))


def synthetic(metric: str, rng: np.random.Generator, at: int | None = None, step: float = 0.0, runs: int = 30,
              seeds: int = 3) -> Series:
    points = []
    for t in range(runs):
        moved = at is not None and t >= at
        if metric == "top1":
            values = list(0.91 + (step if moved else 0.0) + rng.normal(0, 0.009, seeds))
        else:
            run = 100 * np.exp(rng.normal(0, 0.06)) * ((1 + step) if moved else 1)
            values = [run * np.exp(rng.normal(0, 0.01)) for _ in range(seeds)]
        points.append(RunPoint(f"r{t:02d}", f"c{t:02d}", f"2026-01-{t + 1:02d}", values, dict.fromkeys(ENV_FIELDS)))
    return Series("synthetic", "case", metric, None if metric == "top1" else "fp", points)


def main() -> None:
    print("| search | penalty × log(runs) | false change points, accuracy (200 series) | speed (200) | "
          + " | ".join(f"{m} {s:+.1%} found" for m, _, s in STEPS) + " | seconds |")
    print("|---" * (5 + len(STEPS)) + "|")
    for penalty in (3.0, 4.0, 6.0):
        cp.PENALTY = penalty
        for method in ("pelt", "binseg"):
            rng, start = np.random.default_rng(1), time.perf_counter()
            false = [sum(len(cp.detect(synthetic(m, rng), method)) for _ in range(200))
                     for m in ("top1", "train_throughput")]
            found = [sum(any(abs(c.index - at) <= 1 for c in cp.detect(synthetic(m, rng, at, s), method))
                         for _ in range(100)) for m, at, s in STEPS]
            print(f"| {method} | {penalty:g} | {false[0]} | {false[1]} | " + " | ".join(f"{f}/100" for f in found)
                  + f" | {time.perf_counter() - start:.1f} |")


if __name__ == "__main__":
    main()

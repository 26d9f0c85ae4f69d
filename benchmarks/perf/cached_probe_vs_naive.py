"""Linear probe on cached features vs naive frozen-backbone training, 10 epochs, same case.

Reports the wall time of the training phase (feature extraction included for the cached path,
first with an empty cache, then warm as a second seed or run would find it) and the test
accuracy of both. Targets: >= 8x faster, accuracy within 0.5 pp.

    python benchmarks/perf/cached_probe_vs_naive.py [--device cuda] [--size 96]
"""
from __future__ import annotations

import os
import tempfile

import torch
from _common import parser

from sftbench.engine.runner import RunOptions, run_case
from sftbench.suite.cases import expand
from sftbench.suite.loader import parse_suite


def suite(cache: bool, size: int, epochs: int) -> dict:
    return {
        "name": "probe-bench",
        "defaults": {"epochs": epochs, "batch_size": 32, "image_size": size, "optimizer": {"lr": 0.02},
                     "feature_cache": cache},
        "matrix": {"backbones": ["tf_efficientnet_lite0"],
                   "datasets": [{"name": "mnist5k", "train_size": 1000, "test_size": 1000, "val_fraction": 0.1}],
                   "strategies": ["linear_probe"]},
    }


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--size", type=int, default=96)
    p.add_argument("--epochs", type=int, default=10)
    args = p.parse_args()
    options = RunOptions(torch.device(args.device))
    os.environ["SFTBENCH_CACHE"] = tempfile.mkdtemp(prefix="sftbench-probe-bench-")  # start cold
    [naive_case] = expand(parse_suite(suite(False, args.size, args.epochs)))
    [cached_case] = expand(parse_suite(suite(True, args.size, args.epochs)))
    run_case(cached_case, options)  # warm-up: weight conversion and dataset load, not timed below
    for f in (os.path.join(os.environ["SFTBENCH_CACHE"], "features", x)
              for x in os.listdir(os.path.join(os.environ["SFTBENCH_CACHE"], "features"))):
        os.remove(f)  # empty the feature cache again
    cold = run_case(cached_case, options)
    warm = run_case(cached_case, options)
    naive = run_case(naive_case, options)
    print(f"\nlinear probe, tf_efficientnet_lite0 @ {args.size}px, mnist5k 900 train / 100 val / 1000 test, "
          f"{args.epochs} epochs, {options.device}")
    t_naive = naive.timings_s["train"]
    for name, r in (("naive frozen backbone", naive), ("cached features (cold)", cold), ("cached features (warm)", warm)):
        t = r.timings_s["train"]
        print(f"  {name:<24} train phase {t:8.2f} s  speed-up {t_naive / t:6.1f}x  test top-1 {r.metrics.top1:.4f}"
              f"  (features computed {r.features.computed if r.features else 0}, reused {r.features.reused if r.features else 0})")
    print(f"  accuracy difference cached - naive: {100 * (cold.metrics.top1 - naive.metrics.top1):+.2f} pp")


if __name__ == "__main__":
    main()

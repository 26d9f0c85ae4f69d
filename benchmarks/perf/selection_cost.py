"""What model selection costs: every score for every candidate vs fine-tuning those candidates, and
how each score's time grows with samples N and feature width D.

    python benchmarks/perf/selection_cost.py scaling [--reps 3]
    python benchmarks/perf/selection_cost.py versus --suite model_selection --results results/model_selection

`scaling` times each score on class-structured random features (10 classes) for N in {1k, 10k} and
D in {512, 2048}. `versus` scores every candidate of the suite (features from the runner's cache,
as `sftbench rank` does; a cold cache is timed separately) and compares with the summed wall time
of the suite's fine-tunes in the given results.
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from sftbench.results.selection import latest_per_run_key
from sftbench.results.store import read_records, result_files
from sftbench.selection import scores
from sftbench.selection.rank import candidate_cases, rank_cases
from sftbench.suite.cases import expand
from sftbench.suite.discovery import find_suite
from sftbench.suite.loader import load_suite


def scaling(reps: int) -> None:
    rng = np.random.default_rng(0)
    print("seconds per score (median of reps); 10 classes; the source head has 1000 classes")
    print(f"{'N':>6} {'D':>5} " + " ".join(f"{n:>12}" for n in ("logme", "leep", "nce", "h_score", "gbc", "knn")))
    for n in (1000, 10000):
        for d in (512, 2048):
            labels = rng.integers(0, 10, n)
            f = rng.normal(size=(n, d)) + np.eye(10, d)[labels]
            probs = rng.dirichlet(np.ones(1000), n)
            jobs = {"logme": lambda: scores.logme(f, labels), "leep": lambda: scores.leep(probs, labels),
                    "nce": lambda: scores.nce(probs, labels), "h_score": lambda: scores.h_score(f, labels),
                    "gbc": lambda: scores.gbc(f, labels),
                    "knn": lambda: scores.knn_accuracy(f[: n * 4 // 5], labels[: n * 4 // 5], f[n * 4 // 5:],
                                                       labels[n * 4 // 5:])}
            times = {}
            for name, job in jobs.items():
                runs = []
                for _ in range(reps):
                    start = time.perf_counter()
                    job()
                    runs.append(time.perf_counter() - start)
                times[name] = statistics.median(runs)
            print(f"{n:>6} {d:>5} " + " ".join(f"{times[k]:>12.3f}" for k in jobs))


def versus(suite: str, results: Path) -> None:
    path = find_suite(suite)
    cases = expand(load_suite(path), source=str(path))
    fine_tunes = [r for f in result_files([results]) for r in latest_per_run_key(read_records(f)) if r.ok]
    tune_seconds = sum(r.timings_s["total"] for r in fine_tunes)
    start = time.perf_counter()
    candidates = rank_cases(candidate_cases(cases), torch.device("cpu"))
    wall = time.perf_counter() - start
    score_seconds = sum(s.seconds for c in candidates for s in c.scores.values())
    extract = sum(c.feature_seconds for c in candidates)
    print(f"{len(candidates)} candidates; {len(fine_tunes)} fine-tunes took {tune_seconds:.1f} s in all")
    print(f"  all scores: {score_seconds:.2f} s -> {tune_seconds / score_seconds:.0f}x faster than fine-tuning")
    print(f"  rank wall time (model builds, cached features, scores): {wall:.1f} s -> {tune_seconds / wall:.1f}x")
    print(f"  of which forward passes this run: {extract:.1f} s (0 when the cache was warm)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=("scaling", "versus"))
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--suite", default="model_selection")
    p.add_argument("--results", type=Path, default=Path("results/model_selection"))
    args = p.parse_args()
    scaling(args.reps) if args.what == "scaling" else versus(args.suite, args.results)


if __name__ == "__main__":
    main()

"""Shared helpers for the perf benchmarks: interleaved repetitions, medians, one table."""
from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from sftbench.timing import synchronize


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--reps", type=int, default=5, help="interleaved repetitions; medians are reported")
    return p


def timed(device: torch.device, fn: Callable[[], int]) -> float:
    """samples/s of one call of fn (which returns the samples it processed), device-synchronised."""
    synchronize(device)
    start = time.perf_counter()
    samples = fn()
    synchronize(device)
    return samples / (time.perf_counter() - start)


def interleave(reps: int, contenders: dict[str, Callable[[], float]]) -> dict[str, list[float]]:
    """Run each contender once per repetition, alternating, so machine noise hits all alike."""
    results: dict[str, list[float]] = {name: [] for name in contenders}
    for rep in range(reps):
        order = list(contenders.items()) if rep % 2 == 0 else list(reversed(contenders.items()))
        for name, fn in order:
            results[name].append(fn())
    return results


def report(title: str, results: dict[str, list[float]], baseline: str, unit: str = "img/s") -> None:
    medians = {name: statistics.median(v) for name, v in results.items()}
    print(f"\n{title}")
    for name, values in results.items():
        ratio = medians[name] / medians[baseline]
        spread = f"[{min(values):,.1f} .. {max(values):,.1f}]"
        print(f"  {name:<34} median {medians[name]:>10,.1f} {unit}  {spread:<24} ratio vs {baseline}: {ratio:.3f}")

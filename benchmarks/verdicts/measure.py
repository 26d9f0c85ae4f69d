"""Measure the verdicts' false-alarm rate and detection power on real quickstart runs.

    # 1. a >= 3-seed baseline run, an A/A run of >= 5 new seeds, and perturbed runs (see docs/verdicts.md)
    python benchmarks/verdicts/measure.py --baseline RUN.jsonl --aa RUN.jsonl [--perturbed NAME=RUN.jsonl ...]

Prints Markdown tables: A/A false alarms, detection of simulated drops (a known fraction of
correct predictions flipped), detection of real perturbations, and minimum detectable drops.
Perturbed runs change the suite (so their spec hashes differ); the script judges them as if the
change were in code, by giving their records the baseline's spec hashes.
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

from sftbench.regression.baselines import update_baseline
from sftbench.regression.compare import Status, check
from sftbench.regression.stats import mcnemar_detectable_drop
from sftbench.regression.summary import summarise
from sftbench.results.record import PerExample, Record
from sftbench.results.store import read_records
from sftbench.schema import Thresholds
from sftbench.suite.loader import load_suite

SUITE = Path(__file__).resolve().parents[1] / "quickstart.yaml"
DROPS_PP = (1, 2, 3, 5, 10)


def judge(baseline, records: list[Record], thresholds: Thresholds) -> list:
    summaries = summarise(records)
    return check(summaries, baseline, {c: thresholds for c in summaries})


def flipped(record: Record, drop: float, rng: np.random.Generator) -> Record:
    """The record with `drop` x n of its correct predictions made wrong."""
    bits = record.per_example.bools().copy()
    right = np.flatnonzero(bits)
    bits[rng.choice(right, size=min(len(right), round(drop * len(bits))), replace=False)] = False
    metrics = record.metrics.model_copy(update={"top1": float(bits.mean())})
    return record.model_copy(update={"metrics": metrics,
                                     "per_example": PerExample.from_bools(bits, record.per_example.test_digest)})


def by_seed(records: list[Record]) -> dict[int, list[Record]]:
    out: dict[int, list[Record]] = {}
    for r in records:
        out.setdefault(r.seed, []).append(r)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--baseline", type=Path, required=True)
    parser.add_argument("--aa", type=Path, required=True)
    parser.add_argument("--perturbed", nargs="*", default=[])
    parser.add_argument("--seed-sd-confidence", type=float, help="override the suite's thresholds.accuracy value")
    args = parser.parse_args()
    thresholds = load_suite(SUITE).thresholds
    if args.seed_sd_confidence is not None:
        accuracy = thresholds.accuracy.model_copy(update={"seed_sd_confidence": args.seed_sd_confidence})
        thresholds = thresholds.model_copy(update={"accuracy": accuracy})
    print(f"seed_sd_confidence = {thresholds.accuracy.seed_sd_confidence}\n")
    base_records = list(read_records(args.baseline))
    baseline, _ = update_baseline(None, summarise(base_records), "quickstart", base_records[0].hardware_key)
    aa = list(read_records(args.aa))
    runs = by_seed(aa)

    print(f"### A/A: unchanged code, {len(runs)} new seed(s) judged one at a time against a "
          f"{baseline.cases[next(iter(baseline.cases))].accuracy.n}-seed baseline\n")
    print("| run | cases | REGRESSED | NOISE | PASS/IMPROVED |\n|---|---:|---:|---:|---:|")
    total = alarms = 0
    for seed, records in sorted(runs.items()):
        verdicts = judge(baseline, records, thresholds)
        n_reg = sum(v.status is Status.REGRESSED for v in verdicts)
        total, alarms = total + len(verdicts), alarms + n_reg
        print(f"| seed {seed} | {len(verdicts)} | {n_reg} | {sum(v.status is Status.NOISE for v in verdicts)} | "
              f"{sum(v.status in (Status.PASS, Status.IMPROVED) for v in verdicts)} |")
    pooled = judge(baseline, aa, thresholds)
    n_reg = sum(v.status is Status.REGRESSED for v in pooled)
    print(f"| all {len(runs)} seeds pooled | {len(pooled)} | {n_reg} | "
          f"{sum(v.status is Status.NOISE for v in pooled)} | {sum(v.status in (Status.PASS, Status.IMPROVED) for v in pooled)} |")
    print("\n| case | detectable drop, one new seed | detectable drop, 5 seeds pooled |\n|---|---:|---:|")
    single = {v.case_id: v for v in judge(baseline, runs[min(runs)], thresholds)}
    for v in pooled:
        one, acc = single.get(v.case_id), v.check_for("accuracy")
        if acc and one and one.check_for("accuracy"):
            print(f"| {v.case_id} | {100 * one.check_for('accuracy').detectable_drop:.2f} pp | "
                  f"{100 * acc.detectable_drop:.2f} pp |")
    print(f"\nFalse-alarm rate: {alarms + n_reg} REGRESSED of {total + len(pooled)} case verdicts "
          f"({100 * (alarms + n_reg) / (total + len(pooled)):.1f} %).\n")

    rng = np.random.default_rng(0)
    print("### Simulated drops: a known fraction of each run's correct test predictions flipped to wrong\n")
    print("| drop | detected (REGRESSED) | of | detected where the drop exceeds the case's reported detectable drop "
          "| median detectable drop reported |\n|---:|---:|---:|---:|---:|")
    for drop_pp in DROPS_PP:
        detected = trials = eligible = caught = 0
        detectable = []
        for seed, records in sorted(runs.items()):
            for v in judge(baseline, [flipped(r, drop_pp / 100, rng) for r in records], thresholds):
                acc = v.check_for("accuracy")
                if acc is None:
                    continue
                hit = v.check_for("accuracy").status is Status.REGRESSED
                detected, trials = detected + hit, trials + 1
                if acc.delta is not None and -acc.delta > (acc.detectable_drop or math.inf):
                    eligible, caught = eligible + 1, caught + hit
                detectable.append(100 * acc.detectable_drop)
        print(f"| {drop_pp} pp | {detected} | {trials} | {caught} of {eligible} | {np.median(detectable):.2f} pp |")

    if args.perturbed:
        print("\n### Real perturbations, judged as code changes (each seed alone, and pooled)\n")
        print("| perturbation | case | Δ top-1 pp (pooled) | verdict pooled | seeds REGRESSED alone |\n|---|---|---:|---|---:|")
    for item in args.perturbed:
        name, path = item.split("=", 1)
        records = [r.model_copy(update={"spec_hash": baseline.cases[r.case_id].spec_hash})
                   for r in read_records(Path(path)) if r.case_id in baseline.cases]
        alone = {}
        for seed, group in by_seed(records).items():
            for v in judge(baseline, group, thresholds):
                alone[v.case_id] = alone.get(v.case_id, 0) + (v.status is Status.REGRESSED)
        for v in judge(baseline, records, thresholds):
            acc = v.check_for("accuracy")
            print(f"| {name} | {v.case_id} | {100 * (acc.delta or 0):+.2f} | {v.status.value} | "
                  f"{alone.get(v.case_id, 0)}/{len(by_seed(records))} |")

    print("\n### Minimum detectable drop of the exact McNemar test at α = 0.05 (one case, no Holm)\n")
    discordant_rate = np.median([_discordance(baseline, r) for r in aa if r.per_example])
    print(f"Discordant-pair rate measured between unchanged runs: {100 * discordant_rate:.1f} % of test examples.\n")
    print("| test examples | 1 seed | 3 seeds | 5 seeds |\n|---:|---:|---:|---:|")
    for n in (1_000, 10_000):
        cells = []
        for seeds in (1, 3, 5):
            d = round(discordant_rate * n * seeds)
            cells.append(f"{100 * mcnemar_detectable_drop(d, n * seeds, 0.05):.2f} pp")
        print(f"| {n:,} | " + " | ".join(cells) + " |")


def _discordance(baseline, record: Record) -> float:
    entry = baseline.cases[record.case_id]
    base = next(iter(entry.per_example.values())).bools()
    return float((base != record.per_example.bools()).mean())


if __name__ == "__main__":
    main()

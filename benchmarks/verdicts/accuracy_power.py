"""False alarms and power of the accuracy verdicts on real quickstart runs (docs/verdicts.md).

    bash benchmarks/verdicts/quickstart_speed.sh OUT        # ten two-seed runs (seeds 0-19), blessed
    python benchmarks/verdicts/accuracy_power.py --runs OUT/quickstart/bless-*.jsonl \\
        --committed baselines/quickstart/cpu-amd-epyc-2t.json \\
        --unchanged OUT/quickstart/unchanged-20-29.jsonl OUT/quickstart/quiet-check.jsonl OUT/quickstart/busy-check.jsonl

Every seed of a file is judged on its own, as a one-seed nightly run.
1. Leave one seed out: each seed is judged against a baseline blessed from the other seeds (unchanged
   code: any REGRESSED is a false alarm), then with real drops made from it: a fraction of its
   correct test predictions flipped to wrong, so that top-1 and the per-example bits agree. The same
   A/A verdicts are also decided by the paired per-example test alone (exact McNemar against the
   baseline seeds, Holm), the alternative this design rejected.
2. The user's flow: each unchanged run judged against the committed baseline as it is, and with the
   same real drops.
Prints Markdown tables.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from scipy.stats import beta

from sftbench.regression.accuracy import paired_bits
from sftbench.regression.baselines import Baseline, load_baseline, update_baseline
from sftbench.regression.compare import Status, check
from sftbench.regression.stats import holm, mcnemar
from sftbench.regression.summary import summarise
from sftbench.results.record import PerExample, Record
from sftbench.results.store import read_records
from sftbench.schema import Thresholds
from sftbench.suite.loader import load_suite

SUITE = Path(__file__).resolve().parents[1] / "quickstart.yaml"
DROPS_PP = (3, 5, 8, 12)


def upper95(hits: int, trials: int) -> float:
    """One-sided exact (Clopper-Pearson) 95 % upper bound of a rate."""
    return 1.0 if hits == trials else float(beta.ppf(0.95, hits + 1, trials - hits))


def flipped(record: Record, drop: float, rng: np.random.Generator) -> Record:
    """The record with `drop` x n of its correct predictions made wrong (top-1 follows the bits)."""
    assert record.per_example is not None and record.metrics is not None
    bits = record.per_example.bools().copy()
    right = np.flatnonzero(bits)
    bits[rng.choice(right, size=min(len(right), round(drop * len(bits))), replace=False)] = False
    metrics = record.metrics.model_copy(update={"top1": float(bits.mean())})
    return record.model_copy(update={"metrics": metrics,
                                     "per_example": PerExample.from_bools(bits, record.per_example.test_digest)})


def judge(baseline: Baseline, records: list[Record], thresholds: Thresholds) -> dict[str, Status]:
    summaries = summarise(records)
    verdicts = check(summaries, baseline, {c: thresholds for c in summaries})
    return {v.case_id: acc.status for v in verdicts if (acc := v.check_for("accuracy")) is not None}


def mcnemar_alone(baseline: Baseline, records: list[Record], thresholds: Thresholds) -> dict[str, bool]:
    """REGRESSED by the rejected rule: drop beyond abs_tol and exact McNemar (Holm) significant."""
    summaries = summarise(records)
    a = thresholds.accuracy
    tests = {}
    for case_id, s in summaries.items():
        entry = baseline.cases[case_id]
        tests[case_id] = (mcnemar(paired_bits(entry, s), a.alpha),
                          entry.accuracy.mean - s.accuracy_values[0])  # type: ignore[operator]
    adjusted = dict(zip(tests, holm([t.p_value for t, _ in tests.values()])))
    return {c: drop > a.abs_tol and adjusted[c] < a.alpha for c, (_, drop) in tests.items()}


def by_seed(paths: list[Path]) -> dict[str, list[Record]]:
    """Each seed of each file on its own, as a one-seed nightly run would be judged."""
    out: dict[str, list[Record]] = {}
    for p in paths:
        for r in read_records(p):
            if r.ok:
                out.setdefault(f"{p.stem}-seed{r.seed}", []).append(r)
    return out


def tally(rows: dict[str, list[bool]]) -> str:
    hits = sum(sum(v) for v in rows.values())
    trials = sum(len(v) for v in rows.values())
    return f"{hits} of {trials} ({100 * hits / trials:.1f} %; 95 % upper bound {100 * upper95(hits, trials):.1f} %)"


def leave_one_out(runs: dict[str, list[Record]], thresholds: Thresholds) -> None:
    rng = np.random.default_rng(0)
    false_t: dict[str, list[bool]] = {}
    false_m: dict[str, list[bool]] = {}
    caught: dict[int, dict[str, list[bool]]] = {d: {} for d in DROPS_PP}
    for held, records in sorted(runs.items()):
        others = [r for name, rs in runs.items() if name != held for r in rs]
        baseline, _ = update_baseline(None, summarise(others), "quickstart", others[0].hardware_key)
        for case_id, status in judge(baseline, records, thresholds).items():
            false_t.setdefault(case_id, []).append(status is Status.REGRESSED)
        for case_id, alarm in mcnemar_alone(baseline, records, thresholds).items():
            false_m.setdefault(case_id, []).append(alarm)
        for drop in DROPS_PP:
            degraded = [flipped(r, drop / 100, rng) for r in records]
            for case_id, status in judge(baseline, degraded, thresholds).items():
                caught[drop].setdefault(case_id, []).append(status is Status.REGRESSED)
    n = len(runs)
    print(f"### Leave one seed out: each of {n} seeds against a baseline of the other {n - 1}\n")
    print("| case | A/A REGRESSED (seed t-test) | A/A REGRESSED (McNemar alone) | "
          + " | ".join(f"{d} pp drop caught" for d in DROPS_PP) + " |")
    print("|---|---:|---:|" + "---:|" * len(DROPS_PP))
    for case_id in sorted(false_t):
        cells = [f"{sum(caught[d][case_id])}/{len(caught[d][case_id])}" for d in DROPS_PP]
        print(f"| {case_id} | {sum(false_t[case_id])}/{len(false_t[case_id])} | "
              f"{sum(false_m[case_id])}/{len(false_m[case_id])} | " + " | ".join(cells) + " |")
    print(f"\nA/A, seed t-test: {tally(false_t)}. McNemar alone: {tally(false_m)}.\n")


def against_committed(baseline: Baseline, unchanged: dict[str, list[Record]], thresholds: Thresholds) -> None:
    rng = np.random.default_rng(1)
    print(f"### The committed baseline ({baseline.path}), unchanged runs and real drops made from them\n")
    print("| run | drop | " + " | ".join(sorted(baseline.cases)) + " |")
    print("|---|---:|" + "---|" * len(baseline.cases))
    caught: dict[int, dict[str, list[bool]]] = {d: {} for d in (0, *DROPS_PP)}
    for name, records in sorted(unchanged.items()):
        for drop in (0, *DROPS_PP):
            degraded = [flipped(r, drop / 100, rng) for r in records] if drop else records
            statuses = judge(baseline, degraded, thresholds)
            for case_id, status in statuses.items():
                caught[drop].setdefault(case_id, []).append(status is Status.REGRESSED)
            print(f"| {name} | {drop} pp | " + " | ".join(statuses[c].value if c in statuses else "-"
                                                         for c in sorted(baseline.cases)) + " |")
    print("\n| drop | " + " | ".join(sorted(baseline.cases)) + " |")
    print("|---:|" + "---:|" * len(baseline.cases))
    for drop, cases in caught.items():
        print(f"| {drop} pp | " + " | ".join(f"{sum(cases.get(c, []))}/{len(cases.get(c, []))} REGRESSED"
                                             for c in sorted(baseline.cases)) + " |")
    print(f"\nA/A against the committed baseline (0 pp): {tally(caught[0])}.\n")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=Path, nargs="+", required=True, help="one-seed runs of unchanged code")
    parser.add_argument("--committed", type=Path, help="a committed baseline to judge --unchanged against")
    parser.add_argument("--unchanged", type=Path, nargs="*", default=[])
    args = parser.parse_args()
    thresholds = load_suite(SUITE).thresholds
    a = thresholds.accuracy
    print(f"accuracy thresholds: abs_tol {100 * a.abs_tol:g} pp, α {a.alpha:g} (Holm), power {a.power:g}\n")
    leave_one_out(by_seed(args.runs), thresholds)
    if args.committed:
        against_committed(load_baseline(args.committed), by_seed(args.unchanged), thresholds)


if __name__ == "__main__":
    main()

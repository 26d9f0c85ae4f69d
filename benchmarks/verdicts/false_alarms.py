"""A/A false-alarm rate of the accuracy verdicts at scale: many new seeds of unchanged code, each
judged alone against a committed baseline (Holm across the cases of that seed's run, as `check`
does), with the exact (Clopper-Pearson) 95 % upper bound of the rate.

    sftbench run --suite quickstart --seeds 10,11,...,84 --run-id aa75      # unchanged code
    python benchmarks/verdicts/false_alarms.py --baseline baselines/quickstart/cpu-amd-epyc-2t.json \\
        --aa results/quickstart/aa75.jsonl

Only accuracy checks are counted: throughput depends on what else the machine runs.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from scipy.stats import beta

from sftbench.regression.baselines import load_baseline
from sftbench.regression.compare import Status, check
from sftbench.regression.summary import summarise
from sftbench.results.record import Record
from sftbench.results.selection import latest_per_run_key
from sftbench.results.store import read_records
from sftbench.suite.loader import load_suite

SUITE = Path(__file__).resolve().parents[1] / "quickstart.yaml"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--baseline", type=Path, required=True)
    parser.add_argument("--aa", type=Path, action="append", required=True, help="results file (repeatable)")
    parser.add_argument("--complete", action="store_true", help="only seeds that ran every case of the baseline")
    args = parser.parse_args()
    baseline, thresholds = load_baseline(args.baseline), load_suite(SUITE).thresholds
    runs: dict[int, list[Record]] = {}
    records = [r for path in args.aa for r in read_records(path)]
    for record in latest_per_run_key(records):
        if record.ok and record.case_id in baseline.cases:
            runs.setdefault(record.seed, []).append(record)
    if args.complete:  # a seed cut short is judged with a smaller Holm family than a nightly run
        runs = {seed: rs for seed, rs in runs.items() if len(rs) == len(baseline.cases)}
    judged = alarms = 0
    per_case: dict[str, list[int]] = {}
    per_stream: dict[str, list[int]] = {}
    for records in runs.values():
        summaries = summarise(records)
        stream = records[0].run_id
        for verdict in check(summaries, baseline, {c: thresholds for c in summaries}):
            accuracy = verdict.check_for("accuracy")
            if accuracy is None:
                continue
            regressed = accuracy.status is Status.REGRESSED
            judged, alarms = judged + 1, alarms + regressed
            for key, table in ((verdict.case_id, per_case), (stream, per_stream)):
                table.setdefault(key, [0, 0])
                table[key][0] += regressed
                table[key][1] += 1
            if regressed:
                print(f"  REGRESSED: seed {records[0].seed} {verdict.case_id}: {accuracy.reason}")
    print(f"{len(runs)} seeds, {judged} accuracy verdicts, {alarms} REGRESSED "
          f"({100 * alarms / max(judged, 1):.2f} %; one-sided 95 % upper bound {100 * upper95(alarms, judged):.2f} %)")
    for key, (hit, total) in [*sorted(per_case.items()), *sorted(per_stream.items())]:
        print(f"  {key}: {hit} of {total} (upper bound {100 * upper95(hit, total):.1f} %)")


def upper95(k: int, n: int) -> float:
    """Clopper-Pearson one-sided 95 % upper bound of a rate seen k times in n."""
    return float(beta.ppf(0.95, k + 1, n - k)) if n > k else 1.0


if __name__ == "__main__":
    main()

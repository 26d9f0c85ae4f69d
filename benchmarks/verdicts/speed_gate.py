"""The speed gate's figures from the runs of `speed_runs.sh`: calibration band, A/A false alarms per
condition, detection of 2x slowdowns (simulated and real), the smallest slowdown caught, and `ab`.

    bash benchmarks/verdicts/speed_runs.sh OUT && python benchmarks/verdicts/speed_gate.py OUT

Both policies for a machine beyond the calibration band are judged on the same runs:
`machine-differs` (speed unjudged) and `normalise` (speed divided by the calibration's change).
Prints Markdown tables.
"""
from __future__ import annotations

import argparse
import functools
import json
import statistics
from collections import defaultdict
from pathlib import Path

from scipy import stats

from sftbench.regression.ab import ratio_interval
from sftbench.regression.baselines import update_baseline
from sftbench.regression.compare import Status, check
from sftbench.regression.gate import exit_code
from sftbench.regression.speed import Machine, calibration_ratio
from sftbench.regression.summary import summarise
from sftbench.results.record import Record
from sftbench.results.store import read_records
from sftbench.schema import Thresholds
from sftbench.suite.loader import load_suite

SUITE = Path(__file__).resolve().parents[1] / "speed.yaml"
METRICS = ("train_throughput", "eval_throughput", "data_throughput")
DEFAULT = ("machine-differs", 0.01)
POLICIES = (DEFAULT, ("machine-differs", 0.05), ("normalise", 0.01))  # (beyond_band, alpha)


@functools.lru_cache(maxsize=None)  # the suite file is read once, not once per verdict
def thresholds(policy: tuple[str, float] = DEFAULT) -> Thresholds:
    base = load_suite(SUITE).thresholds
    beyond, alpha = policy
    return base.model_copy(update={"throughput": base.throughput.model_copy(update={"beyond_band": beyond,
                                                                                     "alpha": alpha})})


def condition(run_id: str) -> str:
    return run_id.rsplit("-", 1)[0]


def slowed(records: list[Record], factor: float) -> list[Record]:
    """The records with every throughput multiplied by `factor` (a slowdown in code; the machine as it was)."""
    out = []
    for r in records:
        t = r.throughput
        data = t.data_samples_per_s * factor if t.data_samples_per_s else t.data_samples_per_s
        t = t.model_copy(update={"train_samples_per_s": t.train_samples_per_s * factor,
                                 "eval_samples_per_s": t.eval_samples_per_s * factor,
                                 "data_samples_per_s": data, "data_windows": [w * factor for w in t.data_windows],
                                 "train_windows": [w * factor for w in t.train_windows],
                                 "eval_windows": [w * factor for w in t.eval_windows]})
        out.append(r.model_copy(update={"throughput": t}))
    return out


def verdicts_for(baseline, records: list[Record], policy: tuple[str, float] = DEFAULT) -> list:
    """The gate's verdicts on one run's records against the baseline."""
    summaries = summarise(records)
    return check(summaries, baseline, {c: thresholds(policy) for c in summaries})


def case_speed_statuses(verdicts) -> list[list[Status]]:
    """Per case, the statuses of its speed checks."""
    return [[c.status for c in v.checks if c.metric in METRICS] for v in verdicts]


def upper95(k: int, n: int) -> float:
    return 1.0 if n == 0 else float(stats.beta.ppf(0.95, k + 1, n - k)) if k < n else 1.0


def calibration_table(baseline, runs: dict[str, list[Record]]) -> list[str]:
    lines = ["| condition | runs | GEMM vs baseline | copy vs baseline | largest drift in a run |",
             "|---|---:|---|---|---:|"]
    entry = next(iter(baseline.cases.values()))
    base = Machine(baseline.hardware_key, entry.runs)
    groups = defaultdict(list)
    for run_id, records in runs.items():
        groups[condition(run_id)].append(records)
    for name, group in groups.items():
        gemm, copy, drift = [], [], []
        for records in group:
            for summary in summarise(records).values():
                ratios = calibration_ratio(base, Machine(summary.hardware_key, summary.runs))
                gemm.append(ratios.get("gemm_gflops", float("nan")))
                copy.append(ratios.get("copy_gbps", float("nan")))
                drift += [r.drift or 0.0 for r in summary.runs]
        lines.append(f"| {name} | {len(group)} | {min(gemm):.2f}–{max(gemm):.2f} | {min(copy):.2f}–{max(copy):.2f} | "
                     f"{100 * max(drift):.0f} % |")
    return lines


def aa_table(baseline, runs: dict[str, list[Record]]) -> list[str]:
    lines = ["| condition | policy | speed checks | judged | false REGRESSED | MACHINE-DIFFERS | 2x slowdown caught (judged checks) | 2x caught (judged cases) | exit codes |",
             "|---|---|---:|---:|---:|---:|---:|---:|---|"]
    totals = {p: [0, 0, 0, 0, 0, 0] for p in POLICIES}  # checks judged, false alarms, 2x judged, 2x caught, cases
    groups = defaultdict(list)
    for run_id, records in runs.items():
        groups[condition(run_id)].append(records)
    for name, group in groups.items():
        for policy in POLICIES:
            unchanged = [verdicts_for(baseline, records, policy) for records in group]
            halved = [case for records in group
                      for case in case_speed_statuses(verdicts_for(baseline, slowed(records, 0.5), policy))]
            aa = [s for v in unchanged for case in case_speed_statuses(v) for s in case]
            codes = [int(exit_code(v)) for v in unchanged]
            judged = [s for s in aa if s is not Status.MACHINE_DIFFERS]
            false = sum(s is Status.REGRESSED for s in aa)
            slow_judged = [s for case in halved for s in case if s is not Status.MACHINE_DIFFERS]
            caught = sum(s is Status.REGRESSED for s in slow_judged)
            judged_cases = [case for case in halved if any(s is not Status.MACHINE_DIFFERS for s in case)]
            cases_judged, cases_hit = len(judged_cases), sum(Status.REGRESSED in case for case in judged_cases)
            t = totals[policy]
            t[0] += len(judged); t[1] += false; t[2] += len(slow_judged); t[3] += caught
            t[4] += cases_judged; t[5] += cases_hit
            lines.append(f"| {name} | {policy[0]}, α {policy[1]} | {len(aa)} | {len(judged)} | {false} | {len(aa) - len(judged)} | "
                         f"{caught} of {len(slow_judged)} | {cases_hit} of {cases_judged} | {','.join(map(str, codes))} |")
    lines.append("")
    for policy, (judged, false, slow_judged, caught, cases_judged, cases_hit) in totals.items():
        lines.append(f"- **{policy[0]}, α {policy[1]}**: false speed-REGRESSED {false} of {judged} judged checks "
                     f"(95 % upper bound {100 * upper95(false, judged):.1f} %); simulated 2x slowdowns caught in "
                     f"{caught} of {slow_judged} judged checks, {cases_hit} of {cases_judged} judged cases")
    return lines


def smallest_table(baseline, quiet: list[list[Record]]) -> list[str]:
    lines = ["| slowdown (throughput ×) | train checks REGRESSED | eval checks REGRESSED | data-path checks REGRESSED |",
             "|---:|---:|---:|---:|"]
    for factor in (0.97, 0.95, 0.93, 0.9, 0.85, 0.8, 0.7, 0.5):
        hits = {m: [0, 0] for m in METRICS}
        for records in quiet:
            for v in verdicts_for(baseline, slowed(records, factor)):
                for c in v.checks:
                    if c.metric in hits and c.status is not Status.MACHINE_DIFFERS:
                        hits[c.metric][0] += c.status is Status.REGRESSED
                        hits[c.metric][1] += 1
        lines.append(f"| {factor:.2f} | " + " | ".join(f"{k} of {n}" for k, n in hits.values()) + " |")
    return lines


def real_table(baseline, runs: dict[str, list[Record]]) -> list[str]:
    lines = ["| run | case | train | eval | data path | exit |", "|---|---|---|---|---|---:|"]
    for run_id, records in runs.items():
        verdicts = verdicts_for(baseline, records)
        for v in verdicts:
            cells = []
            for metric in METRICS:
                c = v.check_for(metric)
                change = f" {100 * (c.current / c.baseline - 1):+.0f} %" if c and c.baseline and c.current else ""
                cells.append(f"{c.status.value}{change}" if c else "-")
            lines.append(f"| {run_id} | {v.case_id.split('-mnist5k-')[-1]} | {' | '.join(cells)} | "
                         f"{int(exit_code(verdicts))} |")
    return lines


def ab_table(out: Path) -> list[str]:
    lines = ["| comparison | rounds | train B/A [95 % CI] | eval B/A | status | exit |", "|---|---:|---|---|---|---:|"]
    for path in sorted(out.glob("ab-*.json")):
        data = json.loads(path.read_text())
        [case] = data["cases"]
        train, ev = (next(s for s in case["speeds"] if s["metric"] == m) for m in METRICS[:2])
        code = 1 if case["status"] == "REGRESSED" else 0
        lines.append(f"| {path.stem[3:]} | {data['rounds']} | {train['ratio']:.3f} [{train['low']:.3f}, "
                     f"{train['high']:.3f}] | {ev['ratio']:.3f} | {case['status']} | {code} |")
        rounds = train["per_round"]
        for k in range(2, len(rounds)):
            ratio, low, high = ratio_interval(rounds[:k], 0.95)
            lines.append(f"| {path.stem[3:]}, first {k} rounds | {k} | {ratio:.3f} [{low:.3f}, {high:.3f}] | | "
                         f"{'REGRESSED' if high < 1 and ratio < 0.95 else 'not caught'} | |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--bless", nargs="+", default=["bless-0", "bless-1", "bless-2"], metavar="RUN_ID",
                        help="the runs blessed into the baseline (default: the three bless runs); other runs "
                             "named here are left out of the A/A, e.g. --bless aa-quiet-1 ... aa-quiet-10")
    args = parser.parse_args()
    runs: dict[str, list[Record]] = {}
    for path in sorted((args.out / "speed").glob("*.jsonl"), key=lambda p: p.stat().st_mtime):
        runs[path.stem] = list(read_records(path))
    bless = [r for run_id in args.bless for r in runs[run_id]]
    baseline, _ = update_baseline(None, summarise(bless), "speed", bless[0].hardware_key)
    print(f"baseline: {len(args.bless)} run(s), {', '.join(args.bless)}\n")
    aa = {k: v for k, v in runs.items() if k.startswith("aa-") and k not in args.bless}
    real = {k: v for k, v in runs.items() if k.startswith("slow-")}
    for title, lines in (("Calibration against the baseline's (ratios, current / baseline)", calibration_table(baseline, aa | real)),
                         ("A/A: unchanged code", aa_table(baseline, aa)),
                         ("Smallest slowdown caught on the quiet machine (simulated)",
                          smallest_table(baseline, [v for k, v in aa.items() if k.startswith("aa-quiet")])),
                         ("Real slowdowns outside sftbench, quiet machine", real_table(baseline, real)),
                         ("sftbench ab", ab_table(args.out))):
        print(f"### {title}\n")
        print("\n".join(lines) + "\n")
    sd = [statistics.stdev([r.train_samples_per_s for r in e.runs]) / statistics.fmean([r.train_samples_per_s for r in e.runs])
          for e in baseline.cases.values()]
    print(f"baseline between-run train sd: {', '.join(f'{100 * s:.1f} %' for s in sd)}")


if __name__ == "__main__":
    main()

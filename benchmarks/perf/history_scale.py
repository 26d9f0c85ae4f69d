"""History at scale: `history add` of 10,000 records, and `publish` of 100 cases x 365 nights.

Records are copies of a real record (tests/fixtures/results-v1.jsonl) with their run, case, seed,
commit, time and metrics changed; the timed steps are the real commands' code paths
(`add_results`, then the same analysis and `publish` as `sftbench publish`).
Usage: python benchmarks/perf/history_scale.py [--cases 100] [--nights 365]
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

from sftbench.cli.history import _analyse, add_results
from sftbench.report.dashboard import publish

START = datetime(2026, 1, 1, 2, tzinfo=timezone.utc)
TEMPLATE = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "results-v1.jsonl"


def write_nights(folder: Path, cases: int, nights: int, seeds: int) -> list[Path]:
    template = json.loads(TEMPLATE.read_text().splitlines()[0])
    rng = np.random.default_rng(0)
    files = []
    for night in range(nights):
        lines = []
        for case in range(cases):
            for seed in range(seeds):
                record = dict(template, suite="scale", run_id=f"n{night:04d}", case_id=f"case{case:03d}",
                              run_key=f"case{case:03d}-seed{seed}", seed=seed,
                              started_at=(START + timedelta(days=night)).isoformat())
                record["env"] = dict(template["env"], git_commit=f"{night:07x}")
                record["metrics"] = dict(template["metrics"], top1=0.9 + float(rng.normal(0, 0.01)))
                record["throughput"] = dict(template["throughput"],
                                            train_samples_per_s=100 * float(np.exp(rng.normal(0, 0.05))))
                lines.append(json.dumps(record))
        path = folder / f"n{night:04d}.jsonl"
        path.write_text("\n".join(lines) + "\n")
        files.append(path)
    return files


def timed(label: str, func, *args):
    start = time.perf_counter()
    out = func(*args)
    print(f"{label}: {time.perf_counter() - start:.1f} s")
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=100)
    parser.add_argument("--nights", type=int, default=365)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "small").mkdir()
        small = write_nights(root / "small", cases=100, nights=50, seeds=2)  # 10,000 records
        files, records, _ = timed("history add, 10,000 records in 50 files", add_results, root / "small.db", small)
        assert records == 10_000, records
        (root / "big").mkdir()
        big = write_nights(root / "big", cases=args.cases, nights=args.nights, seeds=1)
        timed(f"history add, {args.cases * args.nights:,} records in {args.nights} files", add_results,
              root / "big.db", big)
        start = time.perf_counter()
        series, changes = _analyse(root / "big.db", None, None, ["top1", "train_throughput", "eval_throughput", "peak_mb"])
        pages = publish(series, changes, root / "site")
        print(f"publish, {args.cases} cases x {args.nights} nights ({len(series)} series, {len(changes)} change "
              f"point(s)): {time.perf_counter() - start:.1f} s; index.html {pages[0].stat().st_size / 1e6:.2f} MB, "
              f"plotly.min.js {(root / 'site' / 'plotly.min.js').stat().st_size / 1e6:.1f} MB, "
              f"largest case page {max(p.stat().st_size for p in pages[2:]) / 1e6:.2f} MB")


if __name__ == "__main__":
    main()

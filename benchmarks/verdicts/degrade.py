"""Write a real accuracy drop made from unchanged records, for `sftbench check` to judge end to end.

    python benchmarks/verdicts/degrade.py IN.jsonl OUT.jsonl --drop-pp 5 --seed 20
    sftbench check --suite quickstart --results OUT.jsonl     # exit 1 when a case is REGRESSED

The records of one seed get `drop` x n of their correct test predictions flipped to wrong, so that
top-1 and the per-example bits agree (as `accuracy_power.py` makes its drops).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # a script folder, not a package
from accuracy_power import flipped  # noqa: E402

from sftbench.results.store import Store, read_records  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("source", type=Path)
    parser.add_argument("target", type=Path)
    parser.add_argument("--drop-pp", type=float, required=True)
    parser.add_argument("--seed", type=int, required=True, help="the run's seed whose records are degraded")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    records = [r for r in read_records(args.source) if r.ok and r.seed == args.seed]
    args.target.unlink(missing_ok=True)
    store = Store(args.target)  # the runner's own writer: the same line format `check` reads
    for record in records:
        store.append(flipped(record, args.drop_pp / 100, rng))
    print(f"{len(records)} record(s) of seed {args.seed} with {args.drop_pp:g} pp of correct predictions flipped")


if __name__ == "__main__":
    main()

"""How many rounds an `sftbench ab` comparison needed: its verdicts re-decided on the first k
rounds, for every k, from the per-round ratios in its --json output (docs/verdicts.md).

    python benchmarks/verdicts/ab_rounds.py results/speedgate/ab-*.json
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from sftbench.regression.ab import judge_speeds, measure_ratio


def first_rounds(path: Path) -> None:
    data = json.loads(path.read_text())
    speeds = [s for case in data["cases"] for s in case["speeds"] if s["per_round"]]
    for k in range(2, max(len(s["per_round"]) for s in speeds) + 1):
        ratios = [measure_ratio(s["metric"], s["per_round"][:k], 0.95) for s in speeds]
        judge_speeds(ratios, 0.05, 0.05)
        cells = [f"{r.metric.split('_')[0]} {r.ratio:.3f} [{r.low:.3f}, {r.high:.3f}] Holm p {r.p_adjusted:.3g} "
                 f"{r.status.value}" for r in ratios]
        print(f"| {path.stem} | {k} | " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("results", type=Path, nargs="+", help="`sftbench ab --json` outputs")
    print("| comparison | rounds | train B/A [95 % CI] | eval B/A [95 % CI] |\n|---|---:|---|---|")
    for path in parser.parse_args().results:
        first_rounds(path)


if __name__ == "__main__":
    main()

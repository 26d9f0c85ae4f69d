"""The question issue 25 asks of a sweep: does comparing strategies at one shared learning rate rank
them as selecting each strategy's learning rate on validation does? For each backbone × dataset,
top-1 (mean over seeds) of every strategy at each fixed learning rate of the sweep, its rank there,
and the same after selection on validation (the chosen rate in brackets), as one Markdown table.

    sftbench run --suite benchmarks/depth.yaml --run-id depth
    python benchmarks/sweeps/fixed_vs_selected.py results/depth/depth.jsonl
"""
from __future__ import annotations

import argparse
import statistics
from collections import defaultdict
from pathlib import Path

from sftbench.results.record import Record
from sftbench.results.selection import latest_per_run_key
from sftbench.results.store import read_records
from sftbench.results.sweep_choice import choices, selected

KEY = "optimizer.lr"


def _ranks(scores: dict[str, float]) -> dict[str, int]:
    order = sorted(scores, key=lambda s: -scores[s])
    return {strategy: order.index(strategy) + 1 for strategy in scores}


def _label(part: dict) -> str:
    return part.get("id") or part["name"]


def _pair_and_strategy(r: Record) -> tuple[str, str]:
    """("backbone · dataset", the sweep group's strategy label) of a point's or a chosen record."""
    backbone, dataset = _label(r.spec["backbone"]), _label(r.spec["dataset"])
    return f"{backbone} · {dataset}", r.spec["select"]["group"][len(f"{backbone}-{dataset}-"):]


def _mean_top1(records: list[Record]) -> dict[tuple[str, str], float]:
    """(backbone × dataset, strategy) -> mean test top-1 over seeds."""
    by: dict[tuple[str, str], list[float]] = defaultdict(list)
    for r in records:
        by[_pair_and_strategy(r)].append(r.top1)
    return {key: statistics.fmean(values) for key, values in by.items()}


def table(records: list[Record]) -> str:
    ok = [r for r in records if r.ok and r.top1 is not None and "refit_of" not in r.spec.get("select", {})]
    rates = sorted({r.spec["sweep"][KEY] for r in ok})
    fixed = {lr: _mean_top1([r for r in ok if r.spec["sweep"][KEY] == lr]) for lr in rates}
    chosen_lr = {group: c.chosen_point.get(KEY) for group, c in choices(ok).items()}
    picked = _mean_top1(selected(ok))
    lr_of = {_pair_and_strategy(r): chosen_lr[r.spec["select"]["group"]] for r in ok}
    lines = []
    for pair in sorted({p for p, _ in picked}):
        # strategies that ran at every rate (an interrupted sweep leaves some out of the comparison)
        strategies = [s for p, s in picked if p == pair and all((pair, s) in fixed[lr] for lr in rates)]
        ranks = {lr: _ranks({s: fixed[lr][(pair, s)] for s in strategies}) for lr in rates}
        chosen_ranks = _ranks({s: picked[(pair, s)] for s in strategies})
        lines += [f"**{pair}**", "", "| strategy | " + " | ".join(f"lr {lr:g}: top-1 % (rank)" for lr in rates)
                  + " | selected on val: top-1 % (rank) [lr] |", "|---" * (len(rates) + 2) + "|"]
        for s in strategies:
            cells = [f"{100 * fixed[lr][(pair, s)]:.1f} ({ranks[lr][s]})" for lr in rates]
            cells.append(f"{100 * picked[(pair, s)]:.1f} ({chosen_ranks[s]}) [{lr_of[(pair, s)]:g}]")
            lines.append(f"| {s} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", type=Path)
    args = parser.parse_args()
    print(table(latest_per_run_key(r for path in args.results for r in read_records(path))))


if __name__ == "__main__":
    main()

"""The seed plan `baseline update` prints: what the blessed seeds buy, per case."""
from __future__ import annotations

from typing import Optional

from rich.console import Console
from rich.table import Table

from ..regression.planning import MAX_SEEDS, SeedPlan
from .escape import terminal_text


def _pp(value: Optional[float]) -> str:
    return "-" if value is None else f"{100 * value:.2f} pp"


def _seeds(value: Optional[int]) -> str:
    return f"> {MAX_SEEDS}" if value is None else str(value)


def print_seed_plan(console: Console, plans: list[SeedPlan], target: float, suite: str) -> None:
    table = Table(title=f"seed plan: drops caught with 80 % power (Holm across {len(plans)} case(s)), "
                        f"target {100 * target:g} pp", title_justify="left")
    for column in ("case", "seeds", "seed sd", "detectable, 1 new seed", "3 new seeds",
                   "baseline seeds for target (1 new seed)", "new seeds per check for target"):
        table.add_column(column, justify="left" if column == "case" else "right", overflow="fold")
    for p in plans:
        if p.seed_sd is None:
            table.add_row(terminal_text(p.case_id), str(p.seeds), "not learnt", "-", "-", "≥ 2", "-")
            continue
        table.add_row(terminal_text(p.case_id), str(p.seeds), _pp(p.seed_sd), _pp(p.detectable_one), _pp(p.detectable_three),
                      _seeds(p.baseline_seeds_for_target), _seeds(p.new_seeds_for_target))
    console.print(table)
    short = [p for p in plans if p.seed_sd is not None and p.baseline_seeds_for_target is not None
             and p.baseline_seeds_for_target > p.seeds]
    if short:
        more = max(p.baseline_seeds_for_target or 0 for p in short)
        console.print(f"to reach {100 * target:g} pp with one new seed, bless from {more} seeds: run "
                      f"`sftbench run --suite {suite} --seeds {','.join(str(s) for s in range(more))}` (or one run per "
                      "seed, for speed) and `sftbench baseline update` with all the results", highlight=False)
    if any(p.seed_sd is not None and p.baseline_seeds_for_target is None for p in plans):
        console.print("where no baseline is enough, one new seed's own noise exceeds the target: check with more "
                      "seeds (`--seeds`, or `run --check --confirm N` for the suspicious cases) or reduce the case's "
                      "seed noise", highlight=False)

"""Mutation score per module from `mutmut results --all true` (benchmarks/mutation/run.sh).

A mutant counts as caught when a test failed (killed) or hung past mutmut's limit (timeout); one that
no test covers ("no tests") or that every test passed (survived) counts against the score; skipped
mutants are left out.

    python benchmarks/mutation/scores.py mutants/results.txt
"""
from __future__ import annotations

import argparse
from collections import Counter, defaultdict
from pathlib import Path

CAUGHT = {"killed", "timeout"}
LEFT_OUT = {"skipped", "not checked"}


def module_of(mutant: str) -> str:
    """sftbench.regression.stats.x_mcnemar__mutmut_3 -> sftbench.regression.stats"""
    return mutant.split("__mutmut_")[0].rsplit(".", 1)[0]


def tally(lines: list[str]) -> dict[str, Counter]:
    per_module: dict[str, Counter] = defaultdict(Counter)
    for line in lines:
        name, sep, status = line.strip().rpartition(": ")
        if sep and "__mutmut_" in name:
            per_module[module_of(name)][status] += 1
    return per_module


def score(counts: Counter) -> tuple[int, int]:
    judged = sum(n for status, n in counts.items() if status not in LEFT_OUT)
    return sum(counts[s] for s in CAUGHT), judged


def package_of(module: str) -> str:
    """sftbench.regression.stats -> sftbench.regression (selection/scores.py stays its own module)."""
    return module if module.endswith(".scores") else module.rsplit(".", 1)[0]


def table(rows: dict[str, Counter]) -> None:
    print("| module | caught / judged | score | survived | no tests |")
    print("|---|---:|---:|---:|---:|")
    for name, counts in sorted(rows.items()):
        caught, judged = score(counts)
        shown = f"{100 * caught / judged:.1f} %" if judged else "not run"  # 0/0 is no score, not 0 %
        print(f"| {name} | {caught}/{judged} | {shown} | {counts['survived']} | {counts['no tests']} |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("results", type=Path)
    per_module = tally(parser.parse_args().results.read_text().splitlines())
    per_package: dict[str, Counter] = defaultdict(Counter)
    for module, counts in per_module.items():
        per_package[package_of(module)] += counts
    table(per_package)
    print()
    table(per_module)


if __name__ == "__main__":
    main()

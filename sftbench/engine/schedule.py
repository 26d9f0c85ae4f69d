"""Longest-processing-time-first scheduling of cases onto bins (CI shards, and later workers).

Each case's expected wall time comes from the latest recorded run of the same case and spec
(results under --out), else from a rough estimate of its work. LPT places the longest case on the
least-loaded bin, repeatedly; it is within 4/3 of the optimal makespan (Graham 1969). Ties break
on the run key and the bin index, so the assignment does not depend on the order cases are listed
in, and every case lands in exactly one bin.
"""
from __future__ import annotations

import heapq
import statistics
from collections.abc import Iterable

from ..errors import ConfigError
from ..results.record import Record
from ..suite.cases import Case

PROBE_FACTOR = 0.2  # a probe trains the head on cached features: a fraction of a fine-tune's work


def parse_shard(text: str) -> tuple[int, int]:
    """'i/N' (1-based) -> (i, N)."""
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise ConfigError(f"--shard {text!r} is not of the form i/N (for example 2/4)") from None
    if not 1 <= index <= count:
        raise ConfigError(f"--shard {text!r}: i must be between 1 and N")
    return index, count


def recorded_seconds(records: Iterable[Record]) -> dict[tuple[str, str], float]:
    """(run key, spec hash) -> median recorded wall seconds of the finished runs of that case."""
    times: dict[tuple[str, str], list[float]] = {}
    for r in records:
        if r.ok and r.timings_s.get("total"):
            times.setdefault((r.run_key, r.spec_hash), []).append(r.timings_s["total"])
    return {key: statistics.median(values) for key, values in times.items()}


def estimate_seconds(case: Case) -> float:
    """Relative work of a case with no recorded time: epochs x images x pixels (probes cheaper)."""
    images = case.dataset.train_size or 50_000
    side = case.train.image_size or 224
    factor = PROBE_FACTOR if "probe" in case.strategy.name else 1.0
    return case.train.epochs * images * side * side * factor / 2e8


def expected_seconds(cases: list[Case], recorded: dict[tuple[str, str], float]) -> dict[str, float]:
    return {c.run_key: recorded.get((c.run_key, c.spec_hash), estimate_seconds(c)) for c in cases}


def lpt(cases: list[Case], expected: dict[str, float], bins: int) -> list[list[Case]]:
    """Cases split into `bins` lists of balanced expected time, each list longest first."""
    order = sorted(cases, key=lambda c: (-expected[c.run_key], c.run_key))
    loads = [(0.0, b) for b in range(bins)]
    heapq.heapify(loads)
    out: list[list[Case]] = [[] for _ in range(bins)]
    for case in order:
        load, b = heapq.heappop(loads)
        out[b].append(case)
        heapq.heappush(loads, (load + expected[case.run_key], b))
    return out


def shard(cases: list[Case], index: int, count: int, recorded: dict[tuple[str, str], float]) -> list[Case]:
    """The cases of shard `index` of `count` (1-based), in their suite order."""
    mine = {c.run_key for c in lpt(cases, expected_seconds(cases, recorded), count)[index - 1]}
    return [c for c in cases if c.run_key in mine]

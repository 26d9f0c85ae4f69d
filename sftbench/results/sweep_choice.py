"""Which sweep point each group reports: the best on the validation split, never on test.

A suite with `select:` writes into each record's spec the selection metric, the keys chosen over
and the record's sweep group (suite/cases.py). From the records alone, then, every point of a group
is scored by its mean validation metric over its seeds, the best is chosen (ties: the first point
in sweep order), and the chosen point's records stand for the group under the group's id. Records
without `select` pass through unchanged.

The chosen records carry the group's spec hash, a digest of every point's hash: a run that chose
another point of the same sweep is still comparable with its baseline (and the move is reported
there), while a changed sweep is a changed definition.

With `select: {refit: true}` the run also retrains the chosen point on train + val (`refit_of` in
its records' selection names the point): those records, scored once on test, stand for the group.
They never take part in choosing.
"""
from __future__ import annotations

import dataclasses
import hashlib
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Optional

from .record import Record


@dataclass(frozen=True)
class Choice:
    group: str
    metric: str
    over: list[str]
    scores: dict[str, tuple[Optional[float], int]]  # point's case id -> (mean validation score, seeds scored)
    chosen: Optional[str]  # the chosen point's case id; None when no point has a validation score
    points: dict[str, dict[str, Any]]  # point's case id -> its values of the keys chosen over
    spec_hash: str = ""  # the whole sweep's: a digest of its points' spec hashes
    refit: Optional[bool] = None  # None: not asked; True: the chosen point's refit records stand in; False: missing

    @property
    def chosen_point(self) -> dict[str, Any]:
        return dict(self.points.get(self.chosen or "", {}))


def _selection(record: Record) -> Optional[dict[str, Any]]:
    return record.spec.get("select") if record.ok else None


def _refit_of(record: Record) -> Optional[str]:
    return (_selection(record) or {}).get("refit_of")


def _score(record: Record, metric: str) -> Optional[float]:
    return getattr(record.metrics, metric, None) if record.metrics else None


def choices(records: Iterable[Record]) -> dict[str, Choice]:
    """Each sweep group's choice (group id -> Choice), from the records that carry a selection."""
    groups: dict[str, list[Record]] = {}
    refits: set[tuple[str, str]] = set()  # (group, point) pairs that have refit records
    for record in records:
        if (select := _selection(record)) is None:
            continue
        if (point := _refit_of(record)) is not None:
            refits.add((select["group"], point))
        else:
            groups.setdefault(select["group"], []).append(record)
    return {group: _with_refit(_choose(group, mine), mine[0], refits) for group, mine in groups.items()}


def _with_refit(choice: Choice, record: Record, refits: set[tuple[str, str]]) -> Choice:
    if not record.spec["select"].get("refit"):
        return choice
    return dataclasses.replace(choice, refit=(choice.group, choice.chosen) in refits)


def _choose(group: str, records: list[Record]) -> Choice:
    select = records[0].spec["select"]
    by_point: dict[str, list[Record]] = {}
    for record in records:
        by_point.setdefault(record.case_id, []).append(record)
    scores: dict[str, tuple[Optional[float], int]] = {}
    for case_id, mine in by_point.items():
        values = [v for v in (_score(r, select["metric"]) for r in mine) if v is not None]
        scores[case_id] = (statistics.fmean(values) if values else None, len(values))
    scored = [case_id for case_id, (mean, _) in scores.items() if mean is not None]
    chosen = max(scored, key=lambda case_id: scores[case_id][0]) if scored else None  # max keeps the first of ties
    points = {case_id: {k: v for k, v in mine[0].spec.get("sweep", {}).items() if k in select["over"]}
              for case_id, mine in by_point.items()}
    digest = hashlib.sha256(" ".join(sorted({r.spec_hash for r in records})).encode()).hexdigest()[:16]
    return Choice(group, select["metric"], list(select["over"]), scores, chosen, points, digest)


def selected(records: list[Record], all_points: bool = False) -> list[Record]:
    """The records that stand for each case: the chosen point's, under its group's id (`all_points`:
    every record as run, each point under its own id)."""
    if all_points:
        return list(records)
    chosen = {c.chosen: c for c in choices(records).values() if c.chosen}
    out = []
    for record in records:
        if _selection(record) is None:
            out.append(record)
        elif (choice := _stands_for(record, chosen)) is not None:
            out.append(record.model_copy(update={"case_id": choice.group, "run_key": f"{choice.group}-seed{record.seed}",
                                                 "spec_hash": choice.spec_hash}))
    return out


def _stands_for(record: Record, chosen: dict[str, Choice]) -> Optional[Choice]:
    """The choice whose group this record stands for: a chosen point's own record, or, where that
    point was refit, only its refit's (matched by `refit_of`, never by its id's spelling)."""
    refit_of = _refit_of(record)
    choice = chosen.get(refit_of or record.case_id)
    if choice is None or bool(choice.refit) != (refit_of is not None):
        return None
    return choice

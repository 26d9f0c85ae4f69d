"""Which cases retrain on train + val after a sweep ran: each group's point chosen on validation,
once per seed it ran with, for suites with `select: {refit: true}` (VTAB's protocol)."""
from __future__ import annotations

from ..results.record import Record
from ..results.sweep_choice import choices
from ..suite.cases import Case, refit_case


def refit_cases(cases: list[Case], records: list[Record]) -> list[Case]:
    """The refit of every chosen point among `cases`, chosen from `records` (the sweep's own run)."""
    chosen = {choice.chosen for choice in choices(records).values() if choice.chosen}
    return [refit_case(case) for case in cases
            if case.select is not None and case.select.refit and not case.refit and case.case_id in chosen]

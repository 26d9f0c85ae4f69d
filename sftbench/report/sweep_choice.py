"""Which point each sweep group reported: the chosen point and every point's validation score."""
from __future__ import annotations

from rich.console import Console
from rich.table import Table

from ..results.sweep_choice import Choice
from .escape import terminal_text


def _score(mean, n) -> str:
    return "-" if mean is None else f"{100 * mean:.2f} ({n})"


# what stands for the group on test: the chosen point itself, its refit on train + val, or (missing
# refit, e.g. an interrupted run) the chosen point, said so
_REFIT_NOTE = {None: "", True: " · refit on train + val", False: " · refit missing: the point's own test score"}


def choice_table(choices: dict[str, Choice]) -> Table:
    table = Table(title="sweep points chosen on validation (the test split picks nothing)", title_justify="left")
    for column in ("case", "chosen", "val score (seeds) of each point"):
        table.add_column(column)
    for group, choice in sorted(choices.items()):
        chosen = ", ".join(f"{k}={v}" for k, v in choice.chosen_point.items()) or "none scored"
        chosen += _REFIT_NOTE[choice.refit] if choice.chosen else ""
        points = "  ".join(f"{'*' if case_id == choice.chosen else ''}{case_id[len(group) + 1:] or case_id} "
                           f"{_score(*choice.scores[case_id])}" for case_id in choice.scores)
        table.add_row(*map(terminal_text, (group, chosen, points)))
    return table


def print_choices(console: Console, choices: dict[str, Choice]) -> None:
    if choices:
        console.print(choice_table(choices))

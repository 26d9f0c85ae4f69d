"""A rich progress display for `sftbench run`: case i/n, epoch, ETA."""
from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from ..results.record import Record
from ..suite.cases import Case


class RichProgress:
    def __init__(self, console: Console, total: int):
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
            console=console, transient=False,
        )
        self.cases = self.progress.add_task("cases", total=total, detail="")
        self.epochs = self.progress.add_task("epochs", total=1, detail="", visible=False)

    def __enter__(self) -> "RichProgress":
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.__exit__(*exc)

    def case_started(self, index: int, total: int, case: Case) -> None:
        self.progress.update(self.cases, detail=case.run_key)
        self.progress.reset(self.epochs, total=case.train.epochs, visible=True, detail="")

    def epoch_ended(self, epoch: int, epochs: int, loss: float) -> None:
        self.progress.update(self.epochs, completed=epoch, detail=f"loss {loss:.4f}")

    def case_finished(self, record: Record) -> None:
        seconds = f"({record.timings_s['total']:.1f}s)"
        if record.ok:
            self.progress.console.print(f"  {record.run_key}: ok top-1 {record.top1:.4f} {seconds}")
        else:  # the whole message: the user must not wait for the summary to learn what broke
            self.progress.console.print(f"  {record.run_key}: [red]FAILED[/] {seconds} {escape(record.error_message)}",
                                        highlight=False)
        self.progress.advance(self.cases)

    def case_skipped(self, case: Case) -> None:
        self.progress.console.print(f"  {case.run_key}: already recorded, skipped (--resume)")
        self.progress.advance(self.cases)

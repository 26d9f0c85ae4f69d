"""A rich progress display for `sftbench run`: the total with its ETA, and one row per running case."""
from __future__ import annotations

from typing import Any, Optional

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from ..results.record import Record
from ..suite.cases import Case


class RichProgress:
    """Serial runs report epochs into their one row; pool and Ray rows show the time each case has run."""

    def __init__(self, console: Console, total: int):
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.fields[count]}"),
            TextColumn("{task.fields[detail]}"), TimeElapsedColumn(), TextColumn("{task.fields[eta]}"),
            TimeRemainingColumn(), console=console, transient=False,
        )
        self.total = total
        self.cases = self.progress.add_task("cases", total=total, count=f"0/{total}", detail="", eta="ETA")
        self.running: dict[str, TaskID] = {}
        self.latest: TaskID | None = None
        self.done = 0

    def __enter__(self) -> "RichProgress":
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.__exit__(*exc)

    def case_started(self, index: int, total: int, case: Case) -> None:
        self.latest = self.progress.add_task(f"  {case.run_key}", total=case.train.epochs, count="", detail="", eta="")
        self.running[case.run_key] = self.latest

    def case_running(self, case: Case, pid: Optional[int]) -> None:
        row = self.running.get(case.run_key)
        if row is not None:  # a Ray case that waited for a node: it runs now
            self.progress.update(row, detail="")

    def case_waiting(self, case: Case, why: str) -> None:
        row = self.running.get(case.run_key)
        if row is not None:
            self.progress.update(row, detail=f"[yellow]{escape(why)}[/]")

    def epoch_ended(self, epoch: int, epochs: int, loss: float) -> None:
        if self.latest is not None:  # only the serial runner reports epochs: its one running case
            self.progress.update(self.latest, completed=epoch, count=f"epoch {epoch}/{epochs}", detail=f"loss {loss:.4f}")

    def case_finished(self, record: Record) -> None:
        row = self.running.pop(record.run_key, None)
        if row is not None:
            self.progress.remove_task(row)
            self.latest = None if row == self.latest else self.latest
        seconds = f"({record.timings_s['total']:.1f}s)" if "total" in record.timings_s else ""
        if record.ok:
            self.progress.console.print(f"  {record.run_key}: ok top-1 {record.top1:.4f} {seconds}")
        else:  # the whole message: the user must not wait for the summary to learn what broke
            self.progress.console.print(f"  {record.run_key}: [red]FAILED[/] {seconds} {escape(record.error_message)}",
                                        highlight=False)
        self._advance()

    def case_skipped(self, case: Case) -> None:
        self.progress.console.print(f"  {case.run_key}: already recorded, skipped (--resume)")
        self._advance()

    def _advance(self) -> None:
        self.done += 1
        self.progress.update(self.cases, advance=1, count=f"{self.done}/{self.total}")

"""What a progress display learns from the runner; the silent default does nothing."""
from __future__ import annotations

from typing import Optional, Protocol

from ..results.record import Record
from ..suite.cases import Case


class Observer(Protocol):
    def case_started(self, index: int, total: int, case: Case) -> None: ...
    def case_running(self, case: Case, pid: Optional[int]) -> None: ...  # a pool worker (pid) or Ray (None) runs it
    def case_waiting(self, case: Case, why: str) -> None: ...  # submitted, waiting for a node to join
    def epoch_ended(self, epoch: int, epochs: int, loss: float) -> None: ...
    def case_finished(self, record: Record) -> None: ...
    def case_skipped(self, case: Case) -> None: ...


class SilentObserver:
    def case_started(self, index: int, total: int, case: Case) -> None: pass
    def case_running(self, case: Case, pid: Optional[int]) -> None: pass
    def case_waiting(self, case: Case, why: str) -> None: pass
    def epoch_ended(self, epoch: int, epochs: int, loss: float) -> None: pass
    def case_finished(self, record: Record) -> None: pass
    def case_skipped(self, case: Case) -> None: pass

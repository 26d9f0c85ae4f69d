"""One writer per run: a file lock (`filelock`) beside the results file, and who holds it.

The lock is an OS lock (flock), so a killed writer releases it at once. The holder is written to
a side file after acquiring, and removed at the last release: it only names the holder in the
refusal, it never decides anything. The empty lock file stays: unlinking it could let two writers
lock two different files of the same name.
"""
from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path
from types import TracebackType
from typing import Optional

from filelock import FileLock, Timeout

from ..errors import RunLockedError
from .environment import utc_now


class RunLock:
    """Held while a process writes `<run-id>.jsonl`; a second writer is refused, not queued."""

    def __init__(self, results_path: Path):
        self.results_path = results_path
        self.lock_path = results_path.with_name(results_path.name + ".lock")
        self.holder_path = results_path.with_name(results_path.name + ".holder")
        self._lock = FileLock(str(self.lock_path), timeout=0)

    @property
    def held(self) -> bool:
        return self._lock.is_locked

    def acquire(self) -> None:
        self.results_path.parent.mkdir(parents=True, exist_ok=True)
        first = not self._lock.is_locked
        try:
            self._lock.acquire()
        except Timeout:
            raise RunLockedError(
                f"{self.results_path} is being written by {self._holder()}; wait for that run to finish, "
                "or pick another --run-id"
            ) from None
        if first:
            holder = {"pid": os.getpid(), "host": socket.gethostname(), "since": utc_now(), "argv": sys.argv[:6]}
            self.holder_path.write_text(json.dumps(holder) + "\n")

    def release(self) -> None:
        if self._lock.lock_counter == 1:  # the last release: while still held, nobody else reads it
            self.holder_path.unlink(missing_ok=True)
        self._lock.release()

    def __enter__(self) -> "RunLock":
        self.acquire()
        return self

    def __exit__(self, kind: Optional[type[BaseException]], value: Optional[BaseException],
                 tb: Optional[TracebackType]) -> None:
        self.release()

    def _holder(self) -> str:
        try:
            holder = json.loads(self.holder_path.read_text())
            return f"pid {holder['pid']} on {holder['host']} (since {holder['since']})"
        except (OSError, ValueError, KeyError, TypeError):
            return f"another process (lock {self.lock_path})"

"""The append-only JSONL store of records, and reading result files back (records or pandas)."""
from __future__ import annotations

import json
import os
import tempfile
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO, Optional

import pandas as pd

from ..errors import ConfigError, ResultsFormatError, SftbenchWarning
from ..files import fsync_dir
from ..limits import MAX_RECORD_BYTES
from ..paths import check_safe_name
from .lock import RunLock
from .record import Record


class Store:
    """`results/<suite>/<run-id>.jsonl`: one record per line, appended as each case ends.

    Writers hold the run's lock (`RunLock`): one process per run id. Each record is one `write`
    on an O_APPEND descriptor, then fsync. A torn last line (a crash mid-write) is moved to
    `<run-id>.jsonl.torn` before the next append, so the results file only ever holds whole lines.
    """

    def __init__(self, path: Path):
        self.path = path
        self.lock = RunLock(path)

    @classmethod
    def for_run(cls, out_dir: Path, suite: str, run_id: str) -> "Store":
        check_safe_name(suite, "suite name")
        check_safe_name(run_id, "run id")
        return cls(out_dir / suite / f"{run_id}.jsonl")

    @classmethod
    def latest(cls, out_dir: Path, suite: str) -> Optional["Store"]:
        runs = sorted((out_dir / suite).glob("*.jsonl"), key=lambda p: p.stat().st_mtime)
        return cls(runs[-1]) if runs else None

    @property
    def run_id(self) -> str:
        return self.path.stem

    def append(self, record: Record) -> None:
        line = (json.dumps(record.to_json_dict(), sort_keys=True, default=str) + "\n").encode()
        with self.lock:  # re-entrant: a run that holds it for its whole length appends at once
            self._move_torn_tail()
            new = not self.path.exists()
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)
            if new:  # the file's name in its folder is durable too, not only its bytes
                fsync_dir(self.path.parent)

    def _move_torn_tail(self) -> None:
        """Cut a last line without its newline (left by a crash) out to `<run-id>.jsonl.torn`."""
        if not self.path.exists() or not self.path.stat().st_size:
            return
        with open(self.path, "rb+") as fh:
            fh.seek(-1, os.SEEK_END)
            if fh.read(1) == b"\n":  # the common case: one byte read per append, not the whole file
                return
            fh.seek(0)
            data = fh.read()
            keep = data.rfind(b"\n") + 1
            with open(self.path.with_name(self.path.name + ".torn"), "ab") as torn:
                torn.write(data[keep:] + b"\n")
            fh.truncate(keep)
            os.fsync(fh.fileno())
        warnings.warn(SftbenchWarning(
            f"{self.path}: a torn last line ({len(data) - keep} bytes, from an interrupted run) was moved to "
            f"{self.path.name}.torn; its case runs again with --resume"), stacklevel=2)

    def records(self) -> list[Record]:
        return list(read_records(self.path)) if self.path.exists() else []

    def finished_keys(self) -> set[tuple[str, str]]:
        """(run_key, spec_hash) of cases that finished OK: `--resume` skips them."""
        return {(r.run_key, r.spec_hash) for r in self.records() if r.ok}


def check_writable(folder: Path) -> None:
    """The results folder can be created and written; raises ConfigError naming it."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".sftbench-write-test-"):
            pass
    except OSError as err:
        raise ConfigError(f"output folder {str(folder)!r} is not writable ({err.strerror or err}); "
                          "pass a writable --out") from None


def _unreadable(path: Path, err: OSError) -> ResultsFormatError:
    return ResultsFormatError(f"cannot read results file {str(path)!r} ({err.strerror}); check the path")


def read_bytes(path: Path) -> bytes:
    """A results file's bytes, or one sentence naming why it cannot be read."""
    try:
        return path.read_bytes()
    except OSError as err:
        raise _unreadable(path, err) from None


def read_records(path: Path) -> Iterator[Record]:
    """Every record of a JSONL file, migrated to the current schema.

    A line that is not JSON (torn or garbled) is named in a warning and skipped; a file with no
    readable record at all, a record that is JSON but not a valid record, or a line longer than
    the record limit (it is never read whole), is an error.
    """
    try:
        fh = open(path, "rb")
    except OSError as err:
        raise _unreadable(path, err) from None
    with fh:
        yield from parse_records(fh, path)


def parse_records(lines: BinaryIO, path: Path) -> Iterator[Record]:
    """The records of an open results file or an in-memory copy of one (`io.BytesIO`), as `read_records`."""
    good, bad, limit = 0, [], MAX_RECORD_BYTES.value
    for number, raw in enumerate(iter(lambda: lines.readline(limit + 1), b""), 1):
        if len(raw) > limit:
            raise ResultsFormatError(MAX_RECORD_BYTES.exceeded(f"{path}:{number}", f"holds a line of more than "
                                                               f"{limit:,} bytes"))
        line = raw.decode("utf-8", errors="replace")
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except (json.JSONDecodeError, RecursionError):  # RecursionError: [[[[...]]]] nested past the stack
            bad.append(number)
            warnings.warn(SftbenchWarning(f"{path}:{number}: not a whole JSON record (torn or garbled), "
                                          "skipped; re-run its case with --resume"), stacklevel=2)
            continue
        good += 1
        yield Record.from_json(data, f"{path}:{number}")
    if bad and not good:
        raise ResultsFormatError(f"results file {path} has no readable record ({len(bad)} garbled line(s), the "
                                 f"first at line {bad[0]}); restore it or re-run the suite")


def result_files(paths: Iterable[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        files.extend(sorted(path.rglob("*.jsonl")) if path.is_dir() else [path])
    return files


def load_results(paths: Iterable[str | Path] | str | Path) -> pd.DataFrame:
    """One row per record, nested fields flattened with dots (`metrics.top1`, `env.torch`)."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    records = [r.to_json_dict() for f in result_files(Path(p) for p in paths) for r in read_records(f)]
    return pd.json_normalize(records, sep=".")

"""The append-only JSONL store of records, and reading result files back (records or pandas)."""
from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Optional

import pandas as pd

from ..errors import ResultsFormatError
from ..paths import check_safe_name
from .record import Record


class Store:
    """`results/<suite>/<run-id>.jsonl`: one record per line, appended as each case ends.

    Each record is written with a single `write` on an O_APPEND descriptor and fsynced, so a
    killed run leaves at worst one torn last line, which reading skips.
    """

    def __init__(self, path: Path):
        self.path = path

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
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = (json.dumps(record.to_json_dict(), sort_keys=True, default=str) + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            if os.fstat(fd).st_size and not self._ends_with_newline():
                line = b"\n" + line  # seal a torn line left by a killed run
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)

    def _ends_with_newline(self) -> bool:
        with open(self.path, "rb") as fh:
            fh.seek(-1, os.SEEK_END)
            return fh.read(1) == b"\n"

    def records(self) -> list[Record]:
        return list(read_records(self.path)) if self.path.exists() else []

    def finished_keys(self) -> set[tuple[str, str]]:
        """(run_key, spec_hash) of cases that finished OK: `--resume` skips them."""
        return {(r.run_key, r.spec_hash) for r in self.records() if r.ok}


def read_records(path: Path) -> Iterator[Record]:
    """Every record of a JSONL file, migrated to the current schema; a torn line is skipped."""
    try:
        fh = open(path)
    except OSError as err:
        raise ResultsFormatError(f"cannot read results file {str(path)!r} ({err.strerror}); check the path") from None
    with fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError:
                continue  # a torn line from an interrupted run
            yield Record.from_json(data, f"{path}:{number}")


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

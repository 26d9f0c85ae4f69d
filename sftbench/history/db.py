"""The results history: every record of every run in one SQLite database (standard library `sqlite3`).

The whole record is kept as JSON, beside the columns that queries need (suite, case, run, commit,
time, hardware, library versions and the four metrics), indexed on suite, case, commit and time.
A file added twice adds nothing (its content digest is remembered), and a record already present
(same suite, run id and run key) is skipped. Writers take SQLite's write lock for the whole file
(`BEGIN IMMEDIATE`, WAL journal), so concurrent `history add`s serialise instead of corrupting.
"""
from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional
from urllib.parse import quote

from ..errors import SftbenchError, first_sentence, short_repr
from ..results.environment import utc_now
from ..results.record import Record

SCHEMA_VERSION = 1
APPLICATION_ID = 0x53465442  # "SFTB": tells our database from any other SQLite file
DEFAULT_DB = Path("results") / "history.db"
METRICS = ("top1", "train_throughput", "eval_throughput", "peak_mb")

_SCHEMA = """
CREATE TABLE files (digest TEXT PRIMARY KEY, path TEXT NOT NULL, added_at TEXT NOT NULL, records INTEGER NOT NULL);
CREATE TABLE records (
    id INTEGER PRIMARY KEY,
    suite TEXT NOT NULL, run_id TEXT NOT NULL, run_key TEXT NOT NULL, case_id TEXT NOT NULL, seed INTEGER NOT NULL,
    spec_hash TEXT NOT NULL, status TEXT NOT NULL, commit_sha TEXT, started_at TEXT NOT NULL,
    hardware_key TEXT NOT NULL, fingerprint TEXT, torch TEXT, timm TEXT, cuda TEXT, driver TEXT,
    top1 REAL, train_throughput REAL, eval_throughput REAL, peak_mb REAL,
    record TEXT NOT NULL,
    UNIQUE (suite, run_id, run_key)
);
CREATE INDEX records_suite_case ON records (suite, case_id);
CREATE INDEX records_commit ON records (commit_sha);
CREATE INDEX records_time ON records (started_at);
"""
_COLUMNS = ("suite", "run_id", "run_key", "case_id", "seed", "spec_hash", "status", "commit_sha", "started_at",
            "hardware_key", "fingerprint", "torch", "timm", "cuda", "driver", *METRICS, "record")


class HistoryError(SftbenchError):
    """The database cannot be used as it is: damaged, foreign or newer."""


def _read_only(path: Path) -> HistoryError:
    return HistoryError(f"{path} is read-only, so nothing was added; make it writable (`chmod u+w {path}`) or point "
                        "--db at another file")


def _unreadable(path: Path, err: sqlite3.DatabaseError) -> HistoryError:
    if "readonly" in str(err):
        return _read_only(path)
    return HistoryError(f"{path} is not a readable SQLite database ({first_sentence(err)}); nothing was changed: point "
                        "--db at another file, or restore this one from a backup")


@contextmanager
def _reading(path: Path) -> Iterator[None]:
    """A damaged page is found only when a query reaches it: named in a sentence, not a traceback."""
    try:
        yield
    except sqlite3.DatabaseError as err:
        raise _unreadable(path, err) from None


_TEXT = ("suite", "run_id", "run_key", "case_id", "spec_hash", "status", "started_at", "hardware_key")
_OPTIONAL_TEXT = ("commit_sha", "fingerprint", "torch", "timm", "cuda", "driver")


def _check_row(path: Path, row: sqlite3.Row) -> None:
    """A history database is a file that travels: its columns are checked, not trusted to hold their types."""
    bad = next((c for c in _TEXT if not isinstance(row[c], str)), None) \
        or next((c for c in _OPTIONAL_TEXT if row[c] is not None and not isinstance(row[c], str)), None) \
        or next((m for m in METRICS if row[m] is not None and not isinstance(row[m], (int, float))), None) \
        or ("seed" if not isinstance(row["seed"], int) else None)
    if bad is not None:
        raise HistoryError(f"{path}: a record (run {short_repr(row['run_id'])}) has a {type(row[bad]).__name__} in its "
                           f"{bad} column, which sftbench never writes; the file was edited: restore it from a backup "
                           "or build it again with `sftbench history add`")


@dataclass(frozen=True)
class Added:
    files: int = 0
    records: int = 0
    skipped_files: int = 0
    skipped_records: int = 0


def query_columns(record: Record) -> tuple[Any, ...]:
    """The columns a record is found and plotted by; the JSON keeps everything else."""
    env = record.env
    gpu = (env.fingerprint or {}).get("gpu") or {}
    throughput = record.throughput
    return (record.suite, record.run_id, record.run_key, record.case_id, record.seed, record.spec_hash,
            record.status, env.git_commit, record.started_at, env.hardware_key, env.fingerprint_digest, env.torch,
            env.get("timm"), env.get("cuda"), gpu.get("driver") if isinstance(gpu, dict) else None,
            record.top1, throughput.train_samples_per_s if throughput else None,
            throughput.eval_samples_per_s if throughput else None,
            record.memory.peak_mb if record.memory else None, json.dumps(record.to_json_dict(), sort_keys=True))


class History:
    """One history database; open it with `History.open(path)`."""

    def __init__(self, path: Path, connection: sqlite3.Connection):
        self.path, self.db = path, connection

    @classmethod
    def open(cls, path: Path, create: bool = True, readonly: bool = False) -> "History":
        """`readonly` (show, publish): opened with SQLite's mode=ro, so reading never changes the file."""
        if not path.exists() and (not create or readonly):
            raise HistoryError(f"no history database at {path}; add runs first with `sftbench history add RESULTS.jsonl "
                               f"--db {path}`")
        if not readonly:
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.exists() and not os.access(path, os.W_OK):
                raise _read_only(path)
        try:
            target = f"file:{quote(str(path.resolve()))}?mode=ro" if readonly else str(path)
            connection = sqlite3.connect(target, timeout=60, isolation_level=None, uri=readonly)
            history = cls(path, connection)
            history._prepare(readonly)
        except sqlite3.DatabaseError as err:
            raise _unreadable(path, err) from None
        return history

    def _prepare(self, readonly: bool = False) -> None:
        if not readonly and self._pragma("application_id") == 0 and self._tables() == 0:
            with self._write():
                if self._tables() == 0:  # another process may have created it while this one waited
                    self.db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                    for statement in filter(str.strip, _SCHEMA.split(";")):  # not executescript: it would commit
                        self.db.execute(statement)
                    self.db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            self.db.execute("PRAGMA journal_mode = WAL")
        if self._pragma("application_id") != APPLICATION_ID:
            raise HistoryError(f"{self.path} is an SQLite database, but not an sftbench history; nothing was changed: "
                               "point --db at another file")
        version = self._pragma("user_version")
        if version > SCHEMA_VERSION:
            raise HistoryError(f"{self.path} has history schema {version}, newer than this sftbench reads "
                               f"({SCHEMA_VERSION}); nothing was changed: upgrade sftbench (`pip install -U sftbench`)")

    def _pragma(self, name: str) -> int:
        return self.db.execute(f"PRAGMA {name}").fetchone()[0]

    def _tables(self) -> int:
        return self.db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]

    @contextmanager
    def _write(self) -> Iterator[None]:
        self.db.execute("BEGIN IMMEDIATE")  # the write lock first: concurrent adds wait, then see each other's rows
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def add_file(self, path: Path, content: bytes, records: Iterable[Record]) -> Added:
        """Add one results file's records in one transaction; a file seen before adds nothing. `content` is
        the very buffer the records were parsed from: lines appended meanwhile are neither hashed nor lost."""
        digest = hashlib.blake2b(content, digest_size=16).hexdigest()
        with _reading(self.path), self._write():
            if self.db.execute("SELECT 1 FROM files WHERE digest = ?", (digest,)).fetchone():
                return Added(skipped_files=1)
            rows = [query_columns(r) for r in records]
            before = self.db.total_changes
            self.db.executemany(f"INSERT OR IGNORE INTO records ({', '.join(_COLUMNS)}) "
                                f"VALUES ({', '.join('?' * len(_COLUMNS))})", rows)
            added = self.db.total_changes - before
            self.db.execute("INSERT INTO files VALUES (?, ?, ?, ?)", (digest, str(path), utc_now(), added))
        return Added(files=1, records=added, skipped_records=len(rows) - added)

    def rows(self, suite: Optional[str] = None, case_id: Optional[str] = None) -> list[sqlite3.Row]:
        """The query columns (never the JSON) of every finished record, oldest run first."""
        where, args = ["status = 'ok'"], []
        for column, value in (("suite", suite), ("case_id", case_id)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        self.db.row_factory = sqlite3.Row
        try:
            with _reading(self.path):
                found = self.db.execute(f"SELECT {', '.join(c for c in _COLUMNS if c != 'record')} FROM records "
                                        f"WHERE {' AND '.join(where)} ORDER BY started_at, run_id", args).fetchall()
        finally:
            self.db.row_factory = None
        for row in found:
            _check_row(self.path, row)
        return found

    def record(self, suite: str, run_id: str, run_key: str) -> Optional[dict[str, Any]]:
        with _reading(self.path):
            row = self.db.execute("SELECT record FROM records WHERE suite = ? AND run_id = ? AND run_key = ?",
                                  (suite, run_id, run_key)).fetchone()
        return json.loads(row[0]) if row else None

    def count(self) -> int:
        with _reading(self.path):
            return self.db.execute("SELECT count(*) FROM records").fetchone()[0]

    def close(self) -> None:
        self.db.close()

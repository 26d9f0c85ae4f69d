"""A hostile-input corpus: records, suites, baselines, history databases and command-line strings
crafted as an attacker or a careless user would, each run through the real CLI.

Every input either is refused with one sentence and exit 2, or gives safe output; for all of them:
no traceback, nothing written outside the folder the command writes into, and a refusal within
2 s and 1 GiB (the growth of the process's peak resident memory while the command runs).
"""
from __future__ import annotations

import base64
import copy
import json
import resource
import sqlite3
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import pytest
import yaml
from typer.testing import CliRunner

from conftest import FIXTURES, TINY_SUITE, _merge
from sftbench.cli import app
from sftbench.history.db import APPLICATION_ID, History

TEMPLATE = json.loads((FIXTURES / "results-v1.jsonl").read_text().splitlines()[0])
SCRIPT = "</script><script>alert(document.domain)//"
REFUSAL_SECONDS, REFUSAL_BYTES = 2.0, 1 << 30


def record(**changes: Any) -> dict[str, Any]:
    return _merge(copy.deepcopy(TEMPLATE), changes)


def bits(n: int, size: int) -> dict[str, Any]:
    return {"test_digest": "d", "n": n, "correct": base64.b64encode(b"\xff" * size).decode()}


@dataclass
class Workspace:
    root: Path

    def suite(self, data: Any = None, text: Optional[str] = None, name: str = "tiny.yaml") -> Path:
        path = self.root / name
        path.write_text(text if text is not None else yaml.safe_dump(data or TINY_SUITE, sort_keys=False))
        return path

    def results(self, *records: Any, name: str = "r.jsonl", raw: Optional[bytes] = None) -> Path:
        path = self.root / name
        path.write_bytes(raw if raw is not None else b"".join(json.dumps(r).encode() + b"\n" for r in records))
        return path

    def baseline(self, data: Any = None, raw: Optional[bytes] = None, name: str = "b.json") -> Path:
        path = self.root / name
        path.write_bytes(raw if raw is not None else json.dumps(data).encode())
        return path

    def check(self, *extra: str) -> list[str]:
        return ["check", "--suite", str(self.suite()), *extra]

    def db(self, build: Callable[[sqlite3.Connection], None], name: str = "h.db") -> Path:
        path = self.root / name
        connection = sqlite3.connect(path)
        build(connection)
        connection.commit()
        connection.close()
        return path


def against(ws: Workspace, data: Any = None, raw: Optional[bytes] = None) -> list[str]:
    """`check` of one good record against a crafted baseline file."""
    return ws.check("--results", str(ws.results(record())), "--baseline", str(ws.baseline(data, raw)))


def good_baseline(**changes: Any) -> dict[str, Any]:
    entry = {"spec_hash": "h", "accuracy": {"values": {"0": 0.5}, "n": 1}}
    return _merge({"schema_version": 3, "suite": "tiny", "hardware_key": "cpu-x", "cases": {"c": entry}}, changes)


def history_db(ws: Workspace, rows: list[dict[str, Any]]) -> Path:
    """A real history database, with rows written straight into it (as a crafted file would hold them)."""
    path = ws.root / "h.db"
    History.open(path).close()
    connection = sqlite3.connect(path)
    for row in rows:
        connection.execute(f"INSERT INTO records ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                           list(row.values()))
    connection.commit()
    connection.close()
    return path


def db_row(**changes: Any) -> dict[str, Any]:
    row = {"suite": "tiny", "run_id": "r1", "run_key": "c-seed0", "case_id": "c", "seed": 0, "spec_hash": "h",
           "status": "ok", "commit_sha": "abc", "started_at": "2026-12-01T00:00:00", "hardware_key": "cpu-x",
           "top1": 0.5, "record": "{}"}
    return {**row, **changes}


@dataclass
class Hostile:
    name: str
    args: Callable[[Workspace], list[str]]
    refused: Optional[str] = None  # a fragment of the one sentence; None: safe output is expected
    exits: tuple[int, ...] = (0, 1, 3)  # for safe output
    writes: Optional[str] = None  # the only folder (under the workspace) the command may write into
    env: dict[str, str] = field(default_factory=dict)
    unsafe_output: tuple[str, ...] = ("\x1b", "Traceback")
    verify: Optional[Callable[[Workspace], None]] = None  # more checks of a safe output

    def __str__(self) -> str:
        return self.name


def _damaged(ws: Workspace) -> Path:
    path = history_db(ws, [db_row()])
    data = bytearray(path.read_bytes())
    data[100:4096] = b"\xa5" * (4096 - 100)  # the header's tail and the schema page: garbage
    path.write_bytes(bytes(data))
    return path


def _add_to_read_only(ws: Workspace) -> list[str]:
    return ["history", "add", str(ws.results(record())), "--db", str(history_db(ws, []))]


CORPUS = [
    # --- records -------------------------------------------------------------------------------
    Hostile("record hardware key climbing out", lambda ws: ["baseline", "update", "--suite", str(ws.suite()), "--results",
            str(ws.results(record(env={"hardware_key": "../../escaped"}))), "--baselines-dir", str(ws.root / "bl")],
            "'env.hardware_key' is invalid", writes="bl"),
    Hostile("record hardware key with a slash", lambda ws: ws.check("--results", str(ws.results(
        record(env={"hardware_key": "a/b"})))), "is not a safe file name"),
    Hostile("record hardware key empty", lambda ws: ws.check("--results", str(ws.results(record(env={"hardware_key": ""})))),
            "is not a safe file name"),
    Hostile("record run id with a script", lambda ws: ["history", "add", str(ws.results(record(run_id="r" + SCRIPT))),
                                                       "--db", str(ws.root / "h" / "h.db")], "'run_id' is invalid", writes="h"),
    Hostile("record run id with a trailing newline", lambda ws: ws.check("--results", str(ws.results(record(run_id="r1\n")))),
            "'run_id' is invalid"),
    Hostile("record suite climbing out", lambda ws: ws.check("--results", str(ws.results(record(suite="../tiny")))),
            "'suite' is invalid"),
    Hostile("memory bomb: 10**11 bits from 1 byte", lambda ws: ws.check("--results", str(ws.results(
        record(per_example=bits(10 ** 11, 1))))), "cannot be held by 1 byte(s)"),
    Hostile("memory bomb in baseline update", lambda ws: ["baseline", "update", "--suite", str(ws.suite()), "--results",
            str(ws.results(record(per_example=bits(10 ** 11, 1)))), "--baselines-dir", str(ws.root / "bl")],
            "cannot be held by 1 byte(s)", writes="bl"),
    Hostile("bits: more examples than bits", lambda ws: ws.check("--results", str(ws.results(record(per_example=bits(9, 1))))),
            "n = 9 examples cannot be held"),
    Hostile("bits: negative count", lambda ws: ws.check("--results", str(ws.results(record(per_example=bits(-1, 0))))),
            "'per_example.n' is invalid"),
    Hostile("bits: not base64", lambda ws: ws.check("--results", str(ws.results(
        record(per_example={"test_digest": "d", "n": 8, "correct": "!!!!"})))), "is not base64"),
    Hostile("a record line over the size limit", lambda ws: ws.check("--results", str(ws.results(
        record(spec={"pad": "x" * 5000})))), "raise the limit with SFTBENCH_MAX_RECORD_BYTES",
            env={"SFTBENCH_MAX_RECORD_BYTES": "4096"}),
    Hostile("a line nested past the stack", lambda ws: ws.check("--results", str(ws.results(
        raw=b"[" * 200_000 + b"]" * 200_000 + b"\n"))), "has no readable record"),
    Hostile("a schema version of 100k digits", lambda ws: ws.check("--results", str(ws.results(
        record(schema_version="9" * 100_000)))), "is newer than or unknown"),
    Hostile("a record that is a list", lambda ws: ws.check("--results", str(ws.results([1, 2, 3]))),
            "a record must be a JSON object"),
    Hostile("another suite's results", lambda ws: ws.check("--results", str(ws.results(record(suite="quickstart")))),
            "holds records of suite 'quickstart', not 'tiny'"),
    Hostile("an empty results file", lambda ws: ws.check("--results", str(ws.results(raw=b""))),
            "nothing to judge is never a pass"),
    Hostile("a seed too large for SQLite", lambda ws: ["history", "add", str(ws.results(record(seed=10 ** 30))),
                                                       "--db", str(ws.root / "h" / "h.db")], "'seed' is invalid", writes="h"),
    Hostile("markup and terminal escapes in a case id", lambda ws: ws.check("--results", str(ws.results(
        record(case_id="[/x][bold]\x1b]0;pwned\x07"))))),
    Hostile("markup in a failed case's error", lambda ws: ws.check("--results", str(ws.results(
        record(status="failed", metrics=None, error={"type": "X", "message": "[/red] \x1b[2J boom"}))))),
    Hostile("a NaN top-1", lambda ws: ws.check("--results", str(ws.results(raw=json.dumps(record()).replace(
        '"top1": 0.28125', '"top1": NaN').encode() + b"\n")))),
    # --- baselines -----------------------------------------------------------------------------
    Hostile("baseline seed key that is no number", lambda ws: against(ws, good_baseline(
        cases={"c": {"accuracy": {"values": {"best": 0.5}}}})), "seed 'best' is not a whole number"),
    Hostile("baseline suite climbing out", lambda ws: against(ws, good_baseline(suite="../tiny")),
            "field 'suite' is missing or invalid"),
    Hostile("baseline hardware key climbing out", lambda ws: against(ws, good_baseline(hardware_key="../../x")),
            "field 'hardware_key' is missing or invalid"),
    Hostile("baseline memory bomb", lambda ws: against(ws, good_baseline(
        cases={"c": {"per_example": {"0": bits(10 ** 11, 1)}}})), "cannot be held by 1 byte(s)"),
    Hostile("baseline not JSON", lambda ws: against(ws, raw=b"{nope"), "is not valid JSON"),
    Hostile("baseline over the size limit", lambda ws: against(ws, good_baseline(pad="x" * 5000)),
            "raise the limit with SFTBENCH_MAX_BASELINE_BYTES", env={"SFTBENCH_MAX_BASELINE_BYTES": "4096"}),
    Hostile("baseline nested past the stack", lambda ws: against(ws, raw=b"[" * 200_000 + b"]" * 200_000),
            "is not valid JSON"),
    Hostile("baseline schema version of 100k digits", lambda ws: against(ws, good_baseline(schema_version="9" * 100_000)),
            "has schema version '9999"),
    Hostile("baseline that is a list", lambda ws: against(ws, [1, 2]), "has schema version None"),
    # --- suites --------------------------------------------------------------------------------
    Hostile("suite that imports `this`", lambda ws: ["check", "--suite", str(ws.suite(
        {**TINY_SUITE, "matrix": {**TINY_SUITE["matrix"], "strategies": [{"name": "this:Zen"}]}}))],
            "names code (`module:Class`)", unsafe_output=("The Zen of Python", "\x1b", "Traceback")),
    Hostile("suite that names os:system", lambda ws: ["check", "--suite", str(ws.suite(
        {**TINY_SUITE, "matrix": {**TINY_SUITE["matrix"], "strategies": ["os:system"]}}))], "names code"),
    Hostile("sweep of 3 keys x 100 values", lambda ws: ["check", "--suite", str(ws.suite(
        {**TINY_SUITE, "sweep": {"optimizer.lr": [i / 1000 for i in range(1, 101)], "epochs": list(range(1, 101)),
                                 "batch_size": list(range(1, 101))}}))], "over the limit of 20,000 cases"),
    Hostile("nested aliases (a billion laughs)", lambda ws: ["check", "--suite", str(ws.suite(text=LAUGHS))],
            "over the limit of 100,000 values"),
    Hostile("suite over the size limit", lambda ws: ["check", "--suite", str(ws.suite(text="#" * 5000))],
            "raise the limit with SFTBENCH_MAX_SUITE_BYTES", env={"SFTBENCH_MAX_SUITE_BYTES": "4096"}),
    Hostile("suite with a python tag", lambda ws: ["check", "--suite", str(ws.suite(
        text="name: !!python/object/apply:os.system ['echo pwned']\n"))], "YAML syntax error",
            unsafe_output=("pwned", "\x1b", "Traceback")),
    Hostile("suite nested past the stack", lambda ws: ["check", "--suite", str(ws.suite(text="[" * 100_000))],
            "nests `[` and `{` more than 200 deep"),
    Hostile("suite nested by indentation", lambda ws: ["check", "--suite", str(ws.suite(
        text="".join(" " * i + f"k{i}:\n" for i in range(1200))))], "tiny.yaml"),
    Hostile("suite name climbing out", lambda ws: ["check", "--suite", str(ws.suite({**TINY_SUITE, "name": "../x"}))],
            "is not a safe name"),
    Hostile("suite that is not UTF-8", lambda ws: ["check", "--suite", str(ws.suite(text="")) if not
            (ws.root / "tiny.yaml").write_bytes(b"\xff\xfe name") else str(ws.root / "tiny.yaml")], "not UTF-8 text"),
    # --- history databases ---------------------------------------------------------------------
    Hostile("a damaged history page", lambda ws: ["history", "show", "--db", str(_damaged(ws))],
            "is not a readable SQLite database"),
    Hostile("a foreign SQLite file", lambda ws: ["history", "show", "--db", str(ws.db(
        lambda c: c.execute("CREATE TABLE t (x)")))], "not an sftbench history"),
    Hostile("a history with text in a metric column", lambda ws: ["history", "show", "--db", str(history_db(
        ws, [db_row(top1="high")]))], "has a str in its top1 column"),
    Hostile("a history with a number as its run id", lambda ws: ["publish", "--db", str(history_db(
        ws, [db_row(run_id=b"\x00r1")])), "--out", str(ws.root / "site")], "has a bytes in its run_id column", writes="site"),
    Hostile("a history without its records table", lambda ws: ["history", "show", "--db", str(ws.db(lambda c: (
        c.execute(f"PRAGMA application_id = {APPLICATION_ID}"), c.execute("CREATE TABLE files (x)"))))],
            "is not a readable SQLite database"),
    Hostile("a text file as a history", lambda ws: ["history", "show", "--db", str(ws.baseline(raw=b"hello" * 1000))],
            "is not a readable SQLite database"),
    Hostile("a history newer than this sftbench", lambda ws: ["history", "show", "--db", str(ws.db(lambda c: (
        c.execute(f"PRAGMA application_id = {APPLICATION_ID}"), c.execute("PRAGMA user_version = 99"),
        c.execute("CREATE TABLE files (x)"))))], "newer than this sftbench reads"),
    Hostile("hostile strings inside a history, published", lambda ws: ["publish", "--db", str(history_db(ws, [
        db_row(run_id=SCRIPT, case_id="\"><img src=x onerror=alert(1)>", commit_sha=SCRIPT + "\u2028")])),
        "--out", str(ws.root / "site")], writes="site", verify=lambda ws: _only_own_scripts(ws.root / "site")),
    # --- command-line strings --------------------------------------------------------------------
    Hostile("--run-id with a trailing newline", lambda ws: ["run", "--suite", str(ws.suite()), "--run-id", "r1\n",
                                                            "--out", str(ws.root / "out")], "is not a safe file name"),
    Hostile("--run-id climbing out", lambda ws: ["run", "--suite", str(ws.suite()), "--run-id", "../../x",
                                                 "--out", str(ws.root / "out")], "is not a safe file name"),
    Hostile("a case limit that is no number", lambda ws: ["check", "--suite", str(ws.suite())],
            "SFTBENCH_MAX_CASES='lots' is not a whole number", env={"SFTBENCH_MAX_CASES": "lots"}),
    Hostile("a suite name that does not exist", lambda ws: ["check", "--suite", "../../etc/passwd"], "suite"),
]

# 548 bytes: each line doubles the last; expanded, the spec would hold 2**26 lists
LAUGHS = yaml.safe_dump({k: v for k, v in TINY_SUITE.items() if k != "defaults"}, sort_keys=False) + (
    "defaults:\n  seeds: [0]\nx0: &a0 [1, 1]\n" + "".join(f"x{i}: &a{i} [*a{i - 1}, *a{i - 1}]\n" for i in range(1, 27)))


def _only_own_scripts(site: Path) -> None:
    pages = {p.name: p.read_text().lower() for p in site.glob("*.html")}
    assert len(pages) == 3 and "<img" not in "".join(pages.values())
    for name, text in pages.items():  # the case page: plotly's bundle, one figure per metric (1 here), the drawing
        assert text.count("<script") == (3 if name.startswith("case-") else 0), name


def _files(root: Path) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("hostile", CORPUS, ids=str)
def test_hostile_input(hostile: Hostile, tmp_path, monkeypatch):
    for name, value in hostile.env.items():
        monkeypatch.setenv(name, value)
    ws = Workspace(tmp_path / "ws")
    ws.root.mkdir()
    monkeypatch.chdir(ws.root)
    args = hostile.args(ws)
    before = _files(tmp_path)
    modules = set(sys.modules)
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
    started = time.perf_counter()
    result = CliRunner().invoke(app, args)
    seconds = time.perf_counter() - started
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - peak_before
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    for text in hostile.unsafe_output:
        assert text not in result.output, result.output
    assert "this" not in set(sys.modules) - modules  # no module named by a file was imported
    after = _files(tmp_path)
    # SQLite's -wal and -shm beside a WAL database: its own lock files, made even by a mode=ro reader
    changed = [p for p in after if before.get(p) != after[p] and not p.name.endswith(("-wal", "-shm"))]
    allowed = ws.root / hostile.writes if hostile.writes else None
    assert [p for p in changed if allowed is None or not p.is_relative_to(allowed)] == []
    if hostile.refused is None:
        assert result.exit_code in hostile.exits, result.output
        if hostile.verify:
            hostile.verify(ws)
        return
    message = " ".join(result.output.split())
    assert result.exit_code == 2, result.output
    assert message.startswith("error: ") and message.count("error:") == 1, message
    assert hostile.refused in message, message
    assert seconds < REFUSAL_SECONDS and grown < REFUSAL_BYTES, (seconds, grown)


def test_the_corpus_holds_at_least_forty_inputs_of_every_kind():
    assert len(CORPUS) >= 40 and len({h.name for h in CORPUS}) == len(CORPUS)


def test_a_read_only_history_is_named_read_only_not_damaged(tmp_path):
    """SQLite's own refusal to write (a read-only mount, a file root may not change): opened with mode=ro here."""
    ws = Workspace(tmp_path)
    path = history_db(ws, [])
    history = History(path, sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None))
    from sftbench.history.db import HistoryError

    with pytest.raises(HistoryError, match="is read-only, so nothing was added; make it writable"):
        history.add_file(ws.results(record()), b"x", [])

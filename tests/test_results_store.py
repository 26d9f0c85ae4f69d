"""results/: the lock's refusal when the holder file is unreadable, Store.latest among several runs,
and a results file that cannot be read."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from sftbench.errors import ResultsFormatError, RunLockedError
from sftbench.results.lock import RunLock
from sftbench.results.store import Store, read_records

HOLD = ("import sys, time; from sftbench.results.lock import RunLock; l = RunLock(__import__('pathlib').Path(sys.argv[1])); "
        "l.acquire(); print('held', flush=True); time.sleep(60)")


def test_a_refusal_names_the_lock_file_when_the_holder_file_is_unreadable(tmp_path):
    results = tmp_path / "run.jsonl"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(results)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        (tmp_path / "run.jsonl.holder").write_text("not json")  # a holder file cut short or edited
        with pytest.raises(RunLockedError) as err:
            RunLock(results).acquire()
        assert str(err.value) == (f"{results} is being written by another process (lock {results}.lock); wait for "
                                  "that run to finish, or pick another --run-id")
    finally:
        holder.kill()
        holder.wait()


def test_the_holder_file_is_removed_at_the_last_release_only(tmp_path):
    lock = RunLock(tmp_path / "run.jsonl")
    with lock:
        with lock:  # re-entrant, as a run that holds it for its whole length and appends inside
            pass
        assert lock.holder_path.exists()  # an inner release leaves the holder named
    assert not lock.holder_path.exists() and not lock.held


def test_store_latest_is_the_most_recently_written_run(tmp_path):
    suite_dir = tmp_path / "s"
    suite_dir.mkdir()
    assert Store.latest(tmp_path, "s") is None
    now = time.time()
    for age, name in ((300, "old"), (10, "newest"), (100, "middle")):  # written out of order on purpose
        path = suite_dir / f"{name}.jsonl"
        path.write_text("")
        os.utime(path, (now - age, now - age))
    assert Store.latest(tmp_path, "s").run_id == "newest"


def test_an_unreadable_results_file_is_one_sentence(tmp_path):
    missing = tmp_path / "nope.jsonl"
    with pytest.raises(ResultsFormatError, match=r"^cannot read results file '.*nope.jsonl' \(No such file or "
                                                   r"directory\); check the path$"):
        list(read_records(missing))
    folder = tmp_path / "a-folder.jsonl"
    folder.mkdir()
    with pytest.raises(ResultsFormatError, match=r"^cannot read results file .*\(Is a directory\)"):
        list(read_records(folder))


def test_appended_lines_are_byte_stable_readable_by_others_and_a_torn_tail_keeps_every_whole_line(tmp_path):
    import json
    import warnings

    from conftest import fake_record

    store = Store.for_run(tmp_path, "tiny", "r1")
    for seed in (0, 1):
        store.append(fake_record(seed=seed, run_key=f"c-seed{seed}"))
    lines = store.path.read_text().splitlines()
    assert all(line == json.dumps(json.loads(line), sort_keys=True) for line in lines)  # sorted keys: stable diffs
    assert store.path.stat().st_mode & 0o777 == 0o644
    with store.path.open("a") as fh:
        fh.write('{"torn": ')  # a write cut short by a kill
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        store.append(fake_record(seed=2, run_key="c-seed2"))
    assert [r.seed for r in store.records()] == [0, 1, 2]
    assert (tmp_path / "tiny" / "r1.jsonl.torn").read_text() == '{"torn": \n'  # moved aside, as a line


def test_releasing_a_lock_whose_holder_file_is_gone_is_not_an_error(tmp_path):
    lock = RunLock(tmp_path / "run.jsonl")
    lock.acquire()
    lock.holder_path.unlink()  # removed by hand while the run was going
    lock.release()
    assert not lock.held

"""The results history: the database, change points on a planted synthetic history, the bad inputs,
and the dashboard in a real headless browser."""
from __future__ import annotations

import json
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import fake_record
from sftbench.cli import app
from sftbench.history.changepoints import detect
from sftbench.history.series import ENV_FIELDS, RunPoint, Series
from sftbench.regression.baselines import AccuracyStats, Baseline, BaselineEntry, write_baseline
from sftbench.regression.summary import RunSpeed
from sftbench.report.escape import file_slug

RUNS, SEEDS = 30, 3
STEP_CASE, SPEED_CASE, STEADY_CASE = "lite0-mnist5k-full", "lite0-mnist5k-linear_probe", "lite0-random-mnist5k-full"


def cli(*args: str):
    return CliRunner().invoke(app, list(args))


def flat(text: str) -> str:
    return " ".join(text.split())


def _record(run: int, case: str, seed: int, top1: float, train: float, torch_version: str):
    return fake_record(suite="nightly", run_id=f"night-{run:02d}", case_id=case, run_key=f"{case}-seed{seed}",
                       seed=seed, started_at=f"2026-11-{run + 1:02d}T02:00:{seed:02d}+00:00",
                       env={"git_commit": f"c{run:02d}", "torch": torch_version, "hardware_key": "cpu-test-2t",
                            "fingerprint_digest": "fp1"},
                       metrics={"top1": top1}, throughput={"train_samples_per_s": train, "eval_samples_per_s": 300.0})


def write_history_files(folder: Path, rng: np.random.Generator) -> list[Path]:
    """30 nightly runs c00..c29 of three cases, three seeds each, with the quickstart's measured noise
    (seed sd 0.9 pp; between-run sd 6 % of train speed). Planted: -3 pp top-1 of STEP_CASE from c20,
    -30 % train throughput of SPEED_CASE from c12. torch is upgraded at c25, which moves nothing."""
    files = []
    for run in range(RUNS):
        lines = []
        for case, base in ((STEP_CASE, 0.91), (SPEED_CASE, 0.84), (STEADY_CASE, 0.75)):
            speed = 100 * float(np.exp(rng.normal(0, 0.06))) * (0.7 if case == SPEED_CASE and run >= 12 else 1.0)
            for seed in range(SEEDS):
                top1 = base - (0.03 if case == STEP_CASE and run >= 20 else 0.0) + float(rng.normal(0, 0.009))
                record = _record(run, case, seed, top1, speed * float(np.exp(rng.normal(0, 0.01))),
                                 "2.14.1" if run >= 25 else "2.13.0")
                lines.append(json.dumps(record.to_json_dict()))
        path = folder / f"night-{run:02d}.jsonl"
        path.write_text("\n".join(lines) + "\n")
        files.append(path)
    return files


@pytest.fixture
def history(tmp_path):
    files = write_history_files(tmp_path, np.random.default_rng(20261204))
    db = tmp_path / "h.db"
    result = cli("history", "add", *map(str, files), "--db", str(db))
    assert result.exit_code == 0, result.output
    return db, files


def test_planted_steps_are_found_at_the_right_runs_and_nothing_else(history):
    db, _ = history
    result = cli("history", "show", "--db", str(db), "--format", "json")
    assert result.exit_code == 0, result.output
    found = json.loads(result.output)["change_points"]
    assert sorted((c["case_id"], c["metric"], c["last_good"]["commit"], c["first_bad"]["commit"]) for c in found) == [
        (STEP_CASE, "top1", "c19", "c20"), (SPEED_CASE, "train_throughput", "c11", "c12")]
    step = next(c for c in found if c["metric"] == "top1")
    assert step["delta"] == pytest.approx(-0.03, abs=0.006) and step["worse"] and step["p_value"] < 0.01
    assert step["delta_ci95"][0] < -0.03 < step["delta_ci95"][1] or abs(step["delta"] + 0.03) < 0.003
    speed = next(c for c in found if c["metric"] == "train_throughput")
    assert speed["delta"] == pytest.approx(-0.30, abs=0.06) and speed["first_bad"]["run_id"] == "night-12"


def test_the_table_marks_the_environment_change_and_the_step(history):
    db, _ = history
    result = cli("history", "show", "--db", str(db), "--case", STEP_CASE, "--metric", "top1")
    assert result.exit_code == 0, result.output
    text = flat(result.output)
    assert "torch 2.13.0 → 2.14.1" in text  # marked on the run where it happened
    assert "▼ -3." in text or "▼ -2." in text
    assert "1 change point(s)" in text and "night-19" in text


def test_false_change_points_over_fifty_noise_only_series(capsys):
    """The issue's target: at most one false change point in 50 noise-only series of 30 runs."""
    rng = np.random.default_rng(7)
    false = {"top1": 0, "train_throughput": 0}
    for metric in false:
        for _ in range(50):
            points = []
            for t in range(RUNS):
                run = float(np.exp(rng.normal(0, 0.06)))
                values = [0.91 + float(rng.normal(0, 0.009)) if metric == "top1" else 100 * run for _ in range(SEEDS)]
                points.append(RunPoint(f"r{t}", f"c{t}", f"d{t:02d}", values, dict.fromkeys(ENV_FIELDS)))
            false[metric] += len(detect(Series("s", "c", metric, None if metric == "top1" else "fp", points)))
    with capsys.disabled():
        print(f"\nfalse change points per 50 noise-only series: {false}")
    assert all(count <= 1 for count in false.values()), false


@pytest.mark.trains
def test_adding_the_same_file_twice_adds_nothing_and_run_history_adds_its_run(history, tiny_suite, write_suite,
                                                                              tmp_path):
    db, files = history
    before = sqlite3.connect(db).execute("SELECT count(*) FROM records").fetchone()[0]
    again = cli("history", "add", str(files[0]), "--db", str(db))
    assert again.exit_code == 0 and "added 0 record(s) from 0 file(s); 1 file(s) were already there" in flat(again.output)
    assert sqlite3.connect(db).execute("SELECT count(*) FROM records").fetchone()[0] == before == RUNS * 3 * SEEDS
    tiny_suite["matrix"]["strategies"] = ["linear_probe"]
    run = cli("run", "--suite", str(write_suite(tiny_suite)), "--device", "cpu", "--out", str(tmp_path / "o"),
              "--run-id", "tonight", "--history", str(db))
    assert run.exit_code == 0, run.output
    assert sqlite3.connect(db).execute("SELECT count(*) FROM records WHERE run_id = 'tonight'").fetchone()[0] == 1
    [row] = sqlite3.connect(db).execute("SELECT record FROM records WHERE run_id = 'tonight'").fetchall()
    assert json.loads(row[0])["metrics"]["top1"] >= 0  # the whole record is kept


def test_concurrent_adds_keep_every_record(history, tmp_path):
    _, files = history
    db = tmp_path / "concurrent.db"
    procs = [subprocess.Popen([sys.executable, "-m", "sftbench", "history", "add", str(f), "--db", str(db)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for f in files[:4]]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    assert sqlite3.connect(db).execute("SELECT count(*) FROM records").fetchone()[0] == 4 * 3 * SEEDS


@pytest.mark.parametrize("damage, message", [
    ("garbage", "is not a readable SQLite database"),
    ("foreign", "is an SQLite database, but not an sftbench history"),
    ("newer", "has history schema 99, newer than this sftbench reads (1)"),
])
def test_a_damaged_foreign_or_newer_database_is_one_sentence_and_untouched(history, damage, message):
    db, files = history
    if damage == "garbage":
        db.write_bytes(b"SQLite format 3\x00" + b"\x13" * 4000)
    elif damage == "foreign":
        db.unlink()
        sqlite3.connect(db).execute("CREATE TABLE mine (x)").connection.commit()
    else:
        connection = sqlite3.connect(db, isolation_level=None)
        connection.execute("PRAGMA user_version = 99")
        connection.close()  # checkpointed into the file, so its bytes are final
    before = db.read_bytes()
    for args in (("history", "add", str(files[0])), ("history", "show"), ("publish", "--out", str(db.parent / "site"))):
        result = cli(*args, "--db", str(db))
        assert result.exit_code == 2, result.output
        assert message in flat(result.output) and "nothing was changed" in flat(result.output)
        assert "Traceback" not in result.output
    assert db.read_bytes() == before


def test_a_results_file_from_a_future_schema_adds_nothing(history, tmp_path):
    db, files = history
    future = tmp_path / "future.jsonl"
    lines = files[0].read_text().splitlines()
    future.write_text(lines[0] + "\n" + json.dumps({**json.loads(lines[1]), "schema_version": 99}) + "\n")
    count = sqlite3.connect(db).execute("SELECT count(*) FROM records").fetchone()[0]
    result = cli("history", "add", str(future), "--db", str(db))
    assert result.exit_code == 2 and "schema" in result.output and "upgrade sftbench" in flat(result.output)
    assert sqlite3.connect(db).execute("SELECT count(*) FROM records").fetchone()[0] == count


def test_publish_refuses_a_folder_that_is_not_empty(history, tmp_path):
    db, _ = history
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    result = cli("publish", "--db", str(db), "--out", str(folder))
    assert result.exit_code == 2 and "is not empty and was not written by `sftbench publish`" in flat(result.output)
    assert [p.name for p in folder.iterdir()] == ["notes.txt"]


def test_the_dashboard_has_every_case_and_the_change_points(history, tmp_path):
    db, _ = history
    site = tmp_path / "site"
    result = cli("publish", "--db", str(db), "--out", str(site), "--commit-url", "https://example.org/c/{commit}")
    assert result.exit_code == 0, result.output
    index = (site / "index.html").read_text()
    assert all(case in index for case in (STEP_CASE, SPEED_CASE, STEADY_CASE))
    assert index.count("<tr class='case'>") == 3 and "top1 -" in index and "train_throughput -" in index
    assert "https://example.org/c/c20" in case_page(site, STEP_CASE).read_text()
    regressions = (site / "regressions.html").read_text()
    assert regressions.count("<tr><td>") == 2 and "night-20" in regressions and "night-12" in regressions
    again = cli("publish", "--db", str(db), "--out", str(site))  # an earlier dashboard may be written again
    assert again.exit_code == 0, again.output



def case_page(site: Path, case: str, suite: str = "nightly") -> Path:
    return site / f"case-{file_slug(suite, case)}.html"


def _figures(page: Path) -> list[dict]:
    """The figures as the page's own script reads them: JSON.parse of each figure's data element."""
    found = re.findall(r"<script type='application/json' class='figure' data-plot='plot\d+'>(.*?)</script>", page.read_text())
    return [json.loads(text) for text in found]


def test_case_pages_draw_the_committed_baseline_as_a_band_on_its_own_machine_only(history, tmp_path):
    db, _ = history
    def entry(fingerprint: str) -> BaselineEntry:
        return BaselineEntry(spec_hash="s", accuracy=AccuracyStats(values={"0": 0.90, "1": 0.92}, n=2),
                             env={"fingerprint_digest": fingerprint}, date="2026-10-31T02:00:00+00:00",
                             runs=[RunSpeed(run_id="b1", train_samples_per_s=90.0),
                                   RunSpeed(run_id="b2", train_samples_per_s=110.0)])
    baselines = tmp_path / "baselines"
    write_baseline(Baseline(suite="nightly", hardware_key="cpu-test-2t",
                            cases={STEP_CASE: entry("fp1"), SPEED_CASE: entry("another-machine")}),
                   baselines / "nightly" / "cpu-test-2t.json")
    site = tmp_path / "site"
    result = cli("publish", "--db", str(db), "--out", str(site), "--baselines-dir", str(baselines))
    assert result.exit_code == 0, result.output
    assert "3 of 12 series with a baseline band" in flat(result.output)
    def rects(case: str) -> list[list]:
        return [[(s["y0"], s["y1"]) for s in f["layout"]["shapes"] if s["type"] == "rect"]
                for f in _figures(case_page(site, case))]
    top1, train, evaluation, memory = rects(STEP_CASE)
    assert top1 == [pytest.approx((91 - 2 ** 0.5, 91 + 2 ** 0.5))]  # mean 91 %, seed sd of 90 and 92 = sqrt(2)
    spread = abs(np.log(110 / 90)) / 2 ** 0.5  # sd of the two runs' log speeds
    centre = (90 * 110) ** 0.5
    assert train == [pytest.approx((centre * np.exp(-spread), centre * np.exp(spread)))] and evaluation == memory == []
    assert rects(SPEED_CASE) == [[pytest.approx((91 - 2 ** 0.5, 91 + 2 ** 0.5))], [], [], []]  # speed: another machine
    assert rects(STEADY_CASE) == [[], [], [], []]  # no baseline entry
    no_bands = cli("publish", "--db", str(db), "--out", str(site), "--baselines-dir", str(tmp_path / "none"))
    assert no_bands.exit_code == 0 and "0 of 12 series with a baseline band" in flat(no_bands.output)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.trains
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium); .ci/run installs it")
def test_the_dashboard_renders_in_headless_chromium_without_console_errors(history, tmp_path):
    db, _ = history
    site = tmp_path / "site"
    assert cli("publish", "--db", str(db), "--out", str(site)).exit_code == 0
    page = case_page(site, STEP_CASE)
    flags = [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0",
             "--allow-file-access-from-files", "--window-size=1200,1400", "--virtual-time-budget=5000"]
    dom = subprocess.run(flags + ["--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert dom.stdout.count("class=\"main-svg\"") >= 4  # plotly drew every metric's plot, from the bundled script
    assert "CONSOLE" not in dom.stderr and "Uncaught" not in dom.stderr, dom.stderr[-2000:]
    shot = tmp_path / "shot.png"
    subprocess.run(flags + [f"--screenshot={shot}", page.as_uri()], capture_output=True, timeout=120, check=True)
    import matplotlib.image

    pixels = matplotlib.image.imread(shot)
    assert pixels.shape[0] > 500 and len(np.unique(pixels.reshape(-1, pixels.shape[-1]), axis=0)) > 50  # not blank


def test_a_run_from_an_edited_working_tree_keeps_its_dirty_mark_in_tables_and_pages():
    from sftbench.report.history import commit_text

    assert commit_text("fc3e31ffc4d68308c3b2d725f547760e71799da3-dirty") == "fc3e31ffc4-dirty"
    assert commit_text("fc3e31ffc4d68308c3b2d725f547760e71799da3") == "fc3e31ffc4"
    assert commit_text(None) == "-"

"""Files are data: properties of the parsers and escapers, a hostile dashboard in a real browser,
`ab`'s sides importing their own sftbench, and the smaller seams of issue 38 (writes, Ray, flags)."""
from __future__ import annotations

import base64
import copy
import io
import json
import re
import os
import shutil
import stat
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import FIXTURES, _merge
from sftbench.errors import ConfigError, ResultsFormatError
from sftbench.files import write_atomic
from sftbench.history.changepoints import ChangePoint
from sftbench.history.series import ENV_FIELDS, RunPoint, Series
from sftbench.paths import SAFE_NAME, check_safe_name, under_root
from sftbench.report.baseline_band import Band
from sftbench.report.dashboard import publish
from sftbench.report.escape import file_slug, html_text, markdown_cell, script_json
from sftbench.results.record import Record
from sftbench.results.store import parse_records

PROPERTY = settings(max_examples=int(os.environ.get("SFTBENCH_FUZZ_EXAMPLES", "200")), deadline=None, database=None,
                    derandomize="SFTBENCH_FUZZ_RANDOM" not in os.environ,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
TEMPLATE = json.loads((FIXTURES / "results-v1.jsonl").read_text().splitlines()[0])
HOSTILE = ["</script><script>alert(1)//", "\"><img src=x onerror=alert(2)>", "a\u2028b\u2029c", "<!--", "]]>",
           "javascript:alert(3)", "'; alert(4); '", "&lt;b&gt;", "\x1b]0;t\x07", "{{7*7}}"]
texts = st.one_of(st.text(max_size=40), st.sampled_from(HOSTILE))
json_values = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(), texts),
                           lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(texts, inner, max_size=4)),
                           max_leaves=25)
FIELDS = ["suite", "run_id", "case_id", "run_key", "seed", "env", "per_example", "metrics", "status", "schema_version",
          "labels", "spec", "throughput", "memory"]


# --- properties ---------------------------------------------------------------------------------

@PROPERTY
@given(st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=4))
def test_a_record_with_any_fields_changed_parses_or_is_refused_in_a_sentence(changes):
    line = json.dumps(_merge(copy.deepcopy(TEMPLATE), changes)).encode() + b"\n"
    try:
        records = list(parse_records(io.BytesIO(line), Path("r.jsonl")))
    except ResultsFormatError as err:
        assert str(err).startswith("r.jsonl:1: ") and "\n" not in str(err) and len(str(err)) < 600
        return
    for record in records:  # what parses is safe to use: names are path components, bits are bounded
        for name in (record.suite, record.run_id, record.hardware_key):
            assert SAFE_NAME.fullmatch(name)
        if record.per_example is not None:
            assert len(record.per_example.bools()) == record.per_example.n <= 8 * len(record.per_example.correct)


@PROPERTY
@given(st.binary(max_size=300))
def test_any_bytes_as_a_results_file_parse_or_are_refused(data):
    try:
        list(parse_records(io.BytesIO(data), Path("r.jsonl")))
    except ResultsFormatError:
        pass


@PROPERTY
@given(json_values)
def test_script_json_never_closes_its_element_and_reads_back(value):
    text = script_json(value)
    assert not set(text) & set("<>&\u2028\u2029")
    back = json.loads(text)
    assert json.dumps(back, sort_keys=True) == json.dumps(_no_nan(value), sort_keys=True)


def _no_nan(value):
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else None
    if isinstance(value, dict):
        return {k: _no_nan(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_no_nan(v) for v in value]
    return value


@PROPERTY
@given(texts)
def test_html_and_markdown_escaping_leave_no_markup(text):
    assert not set(html_text(text)) & set("<>\"'")
    cell = markdown_cell(text)
    assert not set(cell) & set("<>\n\r\u2028\u2029\x1b") and "|" not in cell.replace("\\|", "")


@PROPERTY
@given(st.one_of(texts, st.sampled_from(["..", ".", "../x", "r1\n", "a/b", "x" * 129, "ok-name_1.2"])))
def test_a_safe_name_never_leaves_its_folder(tmp_path_factory, name):
    root = tmp_path_factory.getbasetemp() / "root"
    try:
        check_safe_name(name, "run id")
    except ConfigError as err:
        assert "is not a safe file name" in str(err) and "\n" not in str(err)
        return
    assert "/" not in name and "\\" not in name and "\n" not in name and not name.startswith(".") and len(name) <= 128
    assert under_root(root, name, name, suffix=".json").resolve().is_relative_to(root.resolve())


def test_under_root_refuses_a_link_that_leads_out(tmp_path):
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "suite").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(ConfigError, match="resolves outside"):
        under_root(tmp_path / "root", "suite", "cpu", suffix=".json")


# --- the dashboard ------------------------------------------------------------------------------

def hostile_series(payload: str, metric: str = "top1") -> Series:
    points = [RunPoint(run_id=f"{payload}{i}", commit=f"{payload}c{i}", date=f"{payload}2026-12-0{i}",
                       values=[0.5 + 0.01 * i, 0.52], env={name: f"{payload}{name}{i}" for name in ENV_FIELDS})
              for i in range(1, 4)]
    points[2].env_change = {"torch": [payload, payload + "2"]}
    return Series(suite=f"s{payload}", case_id=f"case{payload}", metric=metric,
                  fingerprint=None if metric == "top1" else payload, points=points)


def hostile_site(tmp_path: Path) -> tuple[Path, list[Series]]:
    series = [hostile_series(p, m) for p in HOSTILE[:3] for m in ("top1", "train_throughput")]
    changes = [ChangePoint(series[0], 2, 0.5, 0.4, 0.001, (-0.2, -0.05))]
    bands = {s.key: Band(0.4, 0.5, 0.6, HOSTILE[0] + HOSTILE[1]) for s in series}
    site = tmp_path / "site"
    publish(series, changes, site, commit_url="https://example.org/{commit}?r={run_id}", title=HOSTILE[1], bands=bands)
    return site, series


def test_each_case_gets_its_own_page_and_long_ids_a_short_name(tmp_path):
    cases = ["a b", "a-b", "x" * 300]
    series = [Series("s", case, "top1", None, hostile_series("p").points) for case in cases]
    pages = publish(series, [], tmp_path / "site")
    names = [p.name for p in pages[2:]]
    assert len(set(names)) == 3 and all(len(name) <= 100 for name in names)
    assert file_slug("s", "a b") != file_slug("s", "a-b")


def test_pages_hold_exactly_their_own_scripts_and_quoted_links(tmp_path):
    site, series = hostile_site(tmp_path)
    for page in site.glob("*.html"):
        text = page.read_text()
        own = 0 if page.name in ("index.html", "regressions.html") else 1 + 2 + 1  # bundle, 2 figures, draw
        assert text.lower().count("<script") == own, page.name
        assert "<img" not in text
        for data in re.findall(r"<script type='application/json'[^>]*>(.*?)</script>", text, re.S):
            assert not set(data) & set("<>&\u2028\u2029")
    case = next(site.glob("case-s-script-*.html")).read_text()
    assert "https://example.org/%3C%2Fscript%3E" in case  # the record's commit is URL-quoted into the link


CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")


@pytest.mark.trains
@pytest.mark.skipif(CHROMIUM is None or CHROMEDRIVER is None,
                    reason="needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver); "
                           ".ci/run installs both")
def test_a_hostile_dashboard_opens_no_dialog_runs_only_its_scripts_and_draws_every_plot(tmp_path):
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is in the [test] extra")
    from selenium.common.exceptions import NoAlertPresentException

    site, _ = hostile_site(tmp_path)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--allow-file-access-from-files", f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=CHROMEDRIVER))
    try:
        for page in sorted(site.glob("*.html")):
            driver.get(page.as_uri())
            driver.execute_script("return 1")  # an alert opened by the page would be pending now
            with pytest.raises(NoAlertPresentException):
                driver.switch_to.alert.text
            scripts = driver.execute_script("return Array.from(document.scripts).map(s => s.type || 'js')")
            if page.name.startswith("case-"):
                assert scripts == ["js", "application/json", "application/json", "js"], page.name
                drawn = driver.execute_script("return document.querySelectorAll('.js-plotly-plot .main-svg').length")
                assert drawn >= 2, page.name  # both figures parsed and drawn
                ticks = driver.execute_script("return Array.from(document.querySelectorAll('.xtick text'))"
                                              ".map(t => t.textContent).join(' ')")
                assert "</scr" in ticks or "\"><im" in ticks or "a\u2028b" in ticks  # shown as text, not run
            else:
                assert scripts == [], page.name
            assert driver.execute_script("return document.querySelectorAll('img').length") == 0
            errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
            assert errors == [], errors
    finally:
        driver.quit()


# --- ab: each side imports its own sftbench -------------------------------------------------------

def test_ab_sides_import_their_own_sftbench_whatever_the_current_folder_holds(tmp_path, monkeypatch):
    from sftbench.engine.ab import check_interpreters

    here = tmp_path / "checkout"
    (here / "sftbench").mkdir(parents=True)  # a stub that a child started here would import first
    (here / "sftbench" / "__init__.py").write_text("raise SystemExit('the stub in the current folder was imported')\n")
    other = tmp_path / "side-b"
    (other / "sftbench").mkdir(parents=True)
    (other / "sftbench" / "__init__.py").write_text("")
    wrapper = tmp_path / "python-b"
    wrapper.write_text(f"#!/bin/sh\nPYTHONPATH={other} exec {sys.executable} \"$@\"\n")
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    monkeypatch.chdir(here)
    imports = check_interpreters({"A": sys.executable, "B": str(wrapper)}, tmp_path / "ab")
    import sftbench

    assert imports == {"A": str(Path(sftbench.__file__).parent), "B": str(other / "sftbench")}


# --- smaller seams ------------------------------------------------------------------------------

def test_history_add_hashes_exactly_the_bytes_it_parsed(tmp_path):
    """A line appended while `add` runs is not hashed with the file, so the next `add` still takes it."""
    from sftbench.cli.history import add_results
    from sftbench.history.db import History

    first = json.dumps(TEMPLATE) + "\n"
    second = json.dumps({**TEMPLATE, "run_key": TEMPLATE["run_key"] + "-b"}) + "\n"
    path = tmp_path / "r.jsonl"
    path.write_text(first)
    history = History.open(tmp_path / "h.db")
    content = path.read_bytes()
    path.write_text(first + second)  # a writer appends between the read and the hash
    added = history.add_file(path, content, list(parse_records(io.BytesIO(content), path)))
    history.close()
    assert added.records == 1
    assert add_results(tmp_path / "h.db", [path])[1] == 1  # the appended record arrives on the next add


def test_writes_replace_whole_files_and_leave_no_temporary(tmp_path):
    target = tmp_path / "a" / "page.html"
    write_atomic(target, "one")
    inode = target.stat().st_ino
    write_atomic(target, "two")
    assert target.read_text() == "two" and target.stat().st_ino != inode  # renamed over, never rewritten in place
    assert sorted(p.name for p in target.parent.iterdir()) == ["page.html"]
    write_atomic(Path(os.devnull), "through")  # a device is written through, not replaced
    assert Path(os.devnull).exists() and not Path(os.devnull).is_file()


def test_the_results_folder_is_fsynced_when_a_run_file_is_created(tmp_path, monkeypatch):
    from sftbench.results import store as store_module

    synced = []
    monkeypatch.setattr(store_module, "fsync_dir", synced.append)
    store = store_module.Store.for_run(tmp_path, "tiny", "r1")
    store.path.parent.mkdir(parents=True)
    record = Record.model_validate(TEMPLATE)
    store.append(record)
    store.append(record)
    assert synced == [store.path.parent]  # once: when the file's name first appeared in its folder


def test_ray_without_an_address_starts_a_local_ray_and_never_joins_ray_address(monkeypatch):
    from sftbench.engine.ray_executor import RaySettings, _connect

    calls = []

    class FakeRay:
        def init(self, **kwargs):
            calls.append(kwargs)

    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.1:6379")
    _connect(FakeRay(), RaySettings())
    _connect(FakeRay(), RaySettings(address="auto"))
    assert [c["address"] for c in calls] == ["local", "auto"] and calls[0]["runtime_env"] is None
    monkeypatch.setenv("SFTBENCH_ALLOW_CODE", "1")
    _connect(FakeRay(), RaySettings(address="head:6379"))
    assert calls[-1]["runtime_env"] == {"env_vars": {"SFTBENCH_ALLOW_CODE": "1"}}  # the opt-in reaches the workers


@pytest.mark.parametrize("value, offline", [("0", False), ("false", False), ("", False), ("1", True), ("yes", True)])
def test_offline_flags_mean_what_they_say(monkeypatch, value, offline):
    from sftbench import net

    net.online.cache_clear()
    monkeypatch.setenv("SFTBENCH_OFFLINE", value)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    tried = []
    monkeypatch.setattr(net.socket, "create_connection", lambda *a, **k: tried.append(a) or _Closing())
    try:
        assert net.online() is (not offline) and bool(tried) is (not offline)
    finally:
        net.online.cache_clear()


class _Closing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_an_unclear_flag_is_refused_in_a_sentence(monkeypatch):
    from sftbench.trust import env_flag

    monkeypatch.setenv("SFTBENCH_OFFLINE", "maybe")
    with pytest.raises(ConfigError, match=r"SFTBENCH_OFFLINE='maybe' is neither yes nor no; set it to 1 or 0"):
        env_flag("SFTBENCH_OFFLINE")


def test_code_in_a_suite_runs_only_once_allowed(tmp_path, monkeypatch, tiny_suite):
    from sftbench.suite.loader import parse_suite

    (tmp_path / "planted.py").write_text("import os\nos.environ['PLANTED_RAN'] = '1'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("PLANTED_RAN", raising=False)
    tiny_suite["matrix"]["strategies"] = ["planted:Strategy"]
    with pytest.raises(ConfigError, match=r"strategy 'planted:Strategy' names code"):
        parse_suite(tiny_suite, "s.yaml")
    assert "planted" not in sys.modules and "PLANTED_RAN" not in os.environ
    monkeypatch.setenv("SFTBENCH_ALLOW_CODE", "1")
    with pytest.raises(ConfigError, match="could not be imported"):  # imported (and so run) only now
        parse_suite(tiny_suite, "s.yaml")
    assert os.environ.get("PLANTED_RAN") == "1"
    sys.modules.pop("planted", None)


def test_a_baseline_update_of_failed_cases_writes_nothing(tmp_path, write_suite, tiny_suite):
    from typer.testing import CliRunner

    from sftbench.cli import app

    failed = {**TEMPLATE, "status": "failed", "metrics": None, "error": {"type": "X", "message": "boom"}}
    results = tmp_path / "r.jsonl"
    results.write_text(json.dumps(failed) + "\n")
    result = CliRunner().invoke(app, ["baseline", "update", "--suite", str(write_suite(tiny_suite)), "--results",
                                      str(results), "--baselines-dir", str(tmp_path / "bl")])
    assert result.exit_code == 3 and "wrote nothing to" in result.output
    assert not (tmp_path / "bl").exists() or not any((tmp_path / "bl").rglob("*.json"))


def test_bits_bounds_at_their_edges():
    from sftbench.results.record import PerExample

    for n, size, ok in ((0, 0, True), (1, 1, True), (8, 1, True), (9, 1, False), (9, 2, True), (16, 2, True),
                        (8, 2, False), (1, 0, False), (0, 1, False)):
        data = {"test_digest": "d", "n": n, "correct": base64.b64encode(b"\x00" * size).decode()}
        if ok:
            assert PerExample.model_validate(data).bools().shape == (n,)
        else:
            with pytest.raises(ValueError, match="cannot be held"):
                PerExample.model_validate(data)

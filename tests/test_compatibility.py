"""What is already on disk keeps working: spec hashes, results and baselines written by earlier code."""
from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from sftbench.regression.baselines import load_baseline
from sftbench.report.leaderboard import print_summary
from sftbench.results.store import read_records
from sftbench.suite.cases import expand
from sftbench.suite.loader import load_suite

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).parent / "golden"
FIXTURES = Path(__file__).parent / "fixtures"
[QUICKSTART_BASELINE] = (ROOT / "baselines" / "quickstart").glob("*.json")


def _hashes(suite: Path) -> dict[str, str]:
    return {c.case_id: c.spec_hash for c in expand(load_suite(suite), source=str(suite))}


@pytest.mark.parametrize("suite", sorted(p.stem for p in (ROOT / "benchmarks").glob("*.yaml")))
def test_spec_hashes_of_shipped_suites_are_unchanged(suite):
    assert _hashes(ROOT / "benchmarks" / f"{suite}.yaml") == json.loads((GOLDEN / "spec_hashes.json").read_text())[suite]


def test_quickstart_hashes_match_the_committed_baseline():
    baseline = load_baseline(QUICKSTART_BASELINE)
    assert {k: v.spec_hash for k, v in baseline.cases.items()} == _hashes(ROOT / "benchmarks" / "quickstart.yaml")


def test_committed_baseline_round_trips_byte_for_byte():
    assert load_baseline(QUICKSTART_BASELINE).to_json() == QUICKSTART_BASELINE.read_text()


def test_a_schema_v1_baseline_is_migrated_on_read():
    v1 = FIXTURES / "baseline-v1.json"
    baseline = load_baseline(v1)
    assert json.loads(v1.read_text())["schema_version"] == 1
    assert json.loads(baseline.to_json())["schema_version"] == 3
    entry = baseline.cases["tf_efficientnet_lite0-mnist5k-full"]
    assert entry.accuracy.values == {"0": 0.926} and entry.per_example == {} and entry.train_windows == []
    assert entry.runs == []  # no run speeds before schema 3: speed is MACHINE-DIFFERS until blessed again


def test_results_written_by_schema_v1_code_read_and_render_as_before():
    records = list(read_records(FIXTURES / "results-v1.jsonl"))
    assert [r.seed for r in records] == [0, 1, 0, 1] and all(r.ok for r in records)
    buffer = io.StringIO()
    print_summary(Console(file=buffer, width=160, color_system=None), records, "tiny · run v1-fixture")
    assert buffer.getvalue() == (GOLDEN / "run_summary_w160.txt").read_text()


def test_the_v1_summary_shows_the_figures_worked_out_by_hand_from_the_fixture():
    """The fixture's full fine-tune scored 96.875 % and 43.75 % (mean 70.31, sample sd 53.125 / sqrt 2 =
    37.57), its probe 28.125 % and 12.5 % (20.31 ± 11.05); the probe trains 1,028 of 100,224 parameters
    (1.03 %); eval 13,332.9 and 14,575.2 img/s average to 13,954.1, the probe's 12,078.3 and 11,780.5 to 11,929.4."""
    buffer = io.StringIO()
    print_summary(Console(file=buffer, width=160, color_system=None), list(read_records(FIXTURES / "results-v1.jsonl")), "v1")
    rows = {line.split()[1]: line for line in buffer.getvalue().splitlines() if line.strip()[:1] in {"1", "2"}}
    assert "70.31±37.57 (2)" in rows["full"] and "13,954.1" in rows["full"] and "100.00" in rows["full"]
    assert "20.31±11.05 (2)" in rows["linear_probe"] and "11,929.4" in rows["linear_probe"]
    assert " 1.03 " in rows["linear_probe"]

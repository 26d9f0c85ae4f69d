"""`sftbench rank` end to end on a tiny suite: scores from the runner's cached features, checked
against the suite's fine-tunes, in every output format."""
from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from sftbench.cli import app
from sftbench.report import rank as report
from sftbench.selection.agreement import agreement
from sftbench.selection.rank import Candidate, Score, candidate_cases
from sftbench.suite.cases import expand
from sftbench.suite.loader import parse_suite

GOLDEN = Path(__file__).parent / "golden"


@pytest.fixture
def ranked_suite(tiny_suite, write_suite, tmp_path):
    tiny_suite["matrix"]["backbones"] = [{"name": "test_efficientnet", "weights": "random"},
                                         {"name": "test_efficientnet", "weights": "random", "stage": 2},
                                         {"name": "test_efficientnet", "weights": "random", "stage": 4}]
    tiny_suite["matrix"]["strategies"] = ["linear_probe", "full"]
    tiny_suite["defaults"]["epochs"] = 1
    suite, out = write_suite(tiny_suite), tmp_path / "out"
    ran = CliRunner().invoke(app, ["run", "--suite", str(suite), "--device", "cpu", "--out", str(out)])
    assert ran.exit_code == 0, ran.output
    return suite, out


def rank(suite, out, *extra):
    result = CliRunner().invoke(app, ["rank", "--suite", str(suite), "--device", "cpu", "--out", str(out), *extra],
                                env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    return result.output if "--format" not in extra else result.stdout  # progress lines go to stderr


@pytest.mark.trains
def test_rank_reuses_the_runners_features_and_checks_against_the_fine_tunes(ranked_suite):
    suite, out = ranked_suite
    output = rank(suite, out)
    assert output.count("features from the cache") == 3  # the probes already extracted them: no forward pass
    for header in ("LogME", "LEEP", "NCE", "H-score", "GBC", "kNN acc", "probe acc", "weighted τ", "Pearson r",
                   "regret of the top pick", "wall time"):
        assert header in output
    rows = json.loads(rank(suite, out, "--format", "json"))
    leep = [r for r in rows["scores"] if r["score"] == "leep"]
    assert len(leep) == 3 and all(r["value"] is None and "random" in r["skipped"] for r in leep)
    logme = [r for r in rows["scores"] if r["score"] == "logme"]
    assert sorted(r["rank"] for r in logme) == [1, 2, 3] and all(r["fine_tuned_top1"] is not None for r in logme)
    assert rows["agreement"]["synthetic"]["logme"]["candidates"] == 3
    assert rank(suite, out, "--format", "markdown").startswith("### synthetic\n\n| candidate | fine-tuned top-1 |")
    assert rank(suite, out, "--format", "csv").splitlines()[0] == \
        "dataset,backbone,score,value,rank,seconds,skipped,fine_tuned_top1"


@pytest.mark.trains
def test_rank_plots_score_against_accuracy(ranked_suite, tmp_path):
    suite, out = ranked_suite
    rank(suite, out, "--plot", str(tmp_path / "rank.png"))
    assert (tmp_path / "rank.png").stat().st_size > 10_000


def test_rank_refuses_an_unknown_format_or_dataset_in_one_sentence(tiny_suite, write_suite):
    suite = write_suite(tiny_suite)
    bad = CliRunner().invoke(app, ["rank", "--suite", str(suite), "--format", "xml"])
    assert bad.exit_code == 2 and "--format 'xml' is unknown" in bad.output
    missing = CliRunner().invoke(app, ["rank", "--suite", str(suite), "--dataset", "cifar10"])
    assert missing.exit_code == 2 and "no dataset of suite 'tiny' matches" in missing.output


def test_one_candidate_per_backbone_and_dataset_preferring_the_probe_case(tiny_suite):
    tiny_suite["defaults"]["seeds"] = [3, 1]
    tiny_suite["matrix"]["strategies"] = ["full", "linear_probe"]
    [case] = candidate_cases(expand(parse_suite(tiny_suite)))
    assert case.strategy.name == "linear_probe" and case.seed == 1


def test_agreement_reports_regret_when_the_top_pick_is_not_the_best():
    found = agreement({"a": 3.0, "b": 2.0, "c": 1.0}, {"a": 0.80, "b": 0.90, "c": 0.70})
    assert found.pick == "a" and found.best == "b" and not found.top1_matches
    assert found.regret_pp == pytest.approx(10.0)
    assert agreement({"a": 1.0, "b": 2.0}, {"a": 0.1, "b": 0.2}) is None  # two candidates rank nothing


def toy_candidates():
    candidates = [Candidate(name, "toy", {"logme": Score(v, 0.01), "leep": Score(None, 0.0, "random init")})
                  for name, v in (("big", 0.9), ("small", 0.1), ("mid", 0.5))]
    return candidates, {"toy": {"big": 0.95, "mid": 0.90, "small": 0.60}}


def test_the_rich_table_and_markdown_golden():
    candidates, truth = toy_candidates()
    console = Console(file=io.StringIO(), width=120, color_system=None)
    for table in report.rich_tables(candidates, truth):
        console.print(table)
    text = console.file.getvalue() + "\n" + report.markdown(candidates, truth)
    assert text == (GOLDEN / "rank_w120.txt").read_text()


def test_agreement_figures_worked_by_hand():
    """Scores 0.9, 0.5, 0.1 against top-1 95, 90, 60 %: deviations (0.4, 0, -0.4) and (13.33, 8.33, -21.67) pp,
    so r = 0.14 / sqrt(0.32 * 0.071667) = 0.9245; the two orders agree exactly (τ = 1) and the pick is
    the best (regret 0). Reversed scores: τ = -1, r = -0.9245, the pick is 'small', regret 95 - 60 = 35 pp."""
    truth = toy_candidates()[1]["toy"]
    same = agreement({"big": 0.9, "mid": 0.5, "small": 0.1}, truth)
    assert same.pearson == pytest.approx(0.9245, abs=1e-4) and same.tau == pytest.approx(1.0)
    assert same.pick == same.best == "big" and same.regret_pp == 0.0 and same.top1_matches
    reversed_ = agreement({"big": 0.1, "mid": 0.5, "small": 0.9}, truth)
    assert reversed_.pearson == pytest.approx(-0.9245, abs=1e-4) and reversed_.tau == pytest.approx(-1.0)
    assert reversed_.pick == "small" and reversed_.regret_pp == pytest.approx(35.0)

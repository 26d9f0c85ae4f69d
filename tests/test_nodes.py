"""Each record names the node it ran on; `leaderboard --group-by node` keeps machines apart and `--node`
(leaderboard and check) keeps one node's records."""
from __future__ import annotations

import io
import json

import pandas as pd
import pytest
from conftest import fake_record
from typer.testing import CliRunner

from sftbench.cli import app
from sftbench.errors import ConfigError
from sftbench.report.board import leaderboard_frame
from sftbench.results.selection import on_node

HEAD = "aaaa1111bbbb2222"
WORKER = "cccc3333dddd4444"


def record(seed, ray_node_id, top1, host="box", speed=100.0):
    return fake_record(seed=seed, run_key=f"k-seed{seed}", env={"node": {"host": host, "ray_node_id": ray_node_id}},
                       metrics={"top1": top1}, throughput={"train_wall_samples_per_s": speed})


@pytest.fixture
def records():
    return [record(0, HEAD, 0.5, speed=100.0), record(1, WORKER, 0.7, speed=300.0), record(2, WORKER, 0.9, speed=300.0)]


def test_a_record_without_a_node_field_still_reads():
    legacy = fake_record()
    assert legacy.env.node is None and legacy.env.node_label == "unknown"


@pytest.mark.parametrize("name, seeds", [("box/cccc3333", [1, 2]), ("aaaa", [0]), ("box", [0, 1, 2])])
def test_node_picks_by_label_id_prefix_or_host(records, name, seeds):
    assert [r.seed for r in on_node(records, name)] == seeds


def test_an_unknown_node_is_one_sentence_listing_the_nodes_there_are(records):
    with pytest.raises(ConfigError) as err:
        on_node(records, "gpu-07")
    assert str(err.value) == ("--node 'gpu-07' matches no record in these results (their nodes: box/aaaa1111, "
                              "box/cccc3333); pass a host name, a host/node label or the start of a Ray node id")


def test_grouped_by_node_each_machine_has_its_own_row(records):
    pooled = leaderboard_frame(records, all_runs=True)
    apart = leaderboard_frame(records, all_runs=True, by_node=True).set_index("node")
    assert len(pooled) == 1 and pooled["n"].iloc[0] == 3 and "node" not in pooled
    assert apart.loc["box/aaaa1111", "n"] == 1 and apart.loc["box/cccc3333", "n"] == 2
    assert apart.loc["box/cccc3333", "top1_mean"] == pytest.approx(0.8)
    assert apart.loc["box/aaaa1111", "top1_mean"] == pytest.approx(0.5)


def test_leaderboard_and_check_take_node(records, tmp_path, write_suite, tiny_suite):
    results = tmp_path / "r.jsonl"
    results.write_text("".join(json.dumps(r.to_json_dict()) + "\n" for r in records))
    board = CliRunner().invoke(app, ["leaderboard", str(results), "--all-runs", "--group-by", "node", "--format", "csv"])
    assert board.exit_code == 0, board.output
    assert sorted(pd.read_csv(io.StringIO(board.output))["node"]) == ["box/aaaa1111", "box/cccc3333"]
    one = CliRunner().invoke(app, ["leaderboard", str(results), "--all-runs", "--node", "cccc", "--format", "json"])
    assert [row["n"] for row in json.loads(one.output)] == [2]
    refused = CliRunner().invoke(app, ["check", "--suite", str(write_suite(tiny_suite)), "--results", str(results),
                                       "--node", "nowhere"])
    assert refused.exit_code == 2 and "--node 'nowhere' matches no record" in refused.output

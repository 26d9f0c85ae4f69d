"""CI shards: LPT over expected wall times, every case in exactly one shard, and the merge."""
from __future__ import annotations

import json
import random

import pytest
from typer.testing import CliRunner

from sftbench.cli import app
from sftbench.engine.schedule import expected_seconds, lpt, parse_shard, shard
from sftbench.errors import ConfigError
from sftbench.suite.cases import expand
from sftbench.suite.loader import parse_suite


def cases_of(tiny_suite, seeds=8):
    tiny_suite["defaults"]["seeds"] = list(range(seeds))
    tiny_suite["matrix"]["strategies"] = ["linear_probe", "full", "bitfit"]
    return expand(parse_suite(tiny_suite))


@pytest.mark.parametrize("count", [1, 2, 3, 5, 24])
def test_every_case_lands_in_exactly_one_shard_whatever_the_order(tiny_suite, count):
    cases = cases_of(tiny_suite)
    recorded = {(c.run_key, c.spec_hash): 1.0 + (hash(c.run_key) % 7) for c in cases}
    shards = [shard(cases, i, count, recorded) for i in range(1, count + 1)]
    keys = [c.run_key for part in shards for c in part]
    assert sorted(keys) == sorted(c.run_key for c in cases)  # the union is the suite, nothing twice
    shuffled = random.Random(3).sample(cases, len(cases))
    again = [{c.run_key for c in shard(shuffled, i, count, recorded)} for i in range(1, count + 1)]
    assert again == [{c.run_key for c in part} for part in shards]  # stable under reordering


def test_lpt_balances_heavy_tailed_times_better_than_round_robin(tiny_suite):
    cases = cases_of(tiny_suite)
    rng = random.Random(0)
    times = {c.run_key: rng.paretovariate(1.5) for c in cases}
    for bins in (2, 4, 8):
        makespan = max(sum(times[c.run_key] for c in part) for part in lpt(cases, times, bins))
        bound = max(sum(times.values()) / bins, max(times.values()))
        robin = max(sum(times[c.run_key] for c in cases[b::bins]) for b in range(bins))
        assert makespan <= 4 / 3 * bound + 1e-9 and makespan <= robin


def test_without_recorded_times_probes_are_expected_cheaper(tiny_suite):
    cases = cases_of(tiny_suite, seeds=1)
    expected = expected_seconds(cases, {})
    probe = next(c for c in cases if c.strategy.name == "linear_probe")
    full = next(c for c in cases if c.strategy.name == "full")
    assert expected[probe.run_key] < expected[full.run_key]


@pytest.mark.parametrize("text", ["0/2", "3/2", "a/b", "2"])
def test_a_bad_shard_is_one_sentence(text):
    with pytest.raises(ConfigError, match="--shard"):
        parse_shard(text)


def test_shards_run_and_merge_into_the_whole_suite(tiny_suite, write_suite, tmp_path):
    tiny_suite["defaults"]["seeds"] = [0, 1, 2]
    suite, out = write_suite(tiny_suite), tmp_path / "out"
    cli = CliRunner()
    for i in (1, 2):
        result = cli.invoke(app, ["run", "--suite", str(suite), "--device", "cpu", "--out", str(out),
                                  "--run-id", f"shard{i}", "--shard", f"{i}/2"])
        assert result.exit_code == 0, result.output
    merged = cli.invoke(app, ["results", "merge", str(out / "tiny" / "shard1.jsonl"), str(out / "tiny" / "shard2.jsonl"),
                              "--run-id", "nightly", "--out", str(out)])
    assert merged.exit_code == 0, merged.output
    lines = [json.loads(line) for line in (out / "tiny" / "nightly.jsonl").read_text().splitlines()]
    assert sorted(r["run_key"] for r in lines) == sorted(c.run_key for c in expand(parse_suite(tiny_suite)))
    board = cli.invoke(app, ["leaderboard", str(out / "tiny" / "nightly.jsonl"), "--format", "json"])
    assert {r["n"] for r in json.loads(board.output)} == {3}  # every case's three seeds, from two shards
    again = cli.invoke(app, ["results", "merge", str(out / "tiny"), "--run-id", "nightly", "--out", str(out)])
    assert again.exit_code == 2 and "exists already" in again.output

"""The gate's own functions on small fakes, without training: which records and baseline it judges,
how it confirms suspicious cases, what it refuses, and what blessing writes (the CLI end to end is
in test_gate_cli.py, which trains)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sftbench.errors import SftbenchError
from sftbench.regression.checks import Status
from sftbench.regression.gate import (
    bless,
    confirm_suspicious,
    default_baselines_dir,
    ensure_covers,
    ensure_noise,
    hardware_of,
    judge,
    load_records,
)
from sftbench.results.record import PerExample
from sftbench.suite.cases import expand
from sftbench.suite.loader import parse_suite

from conftest import TINY_SUITE, fake_record

HW = "cpu-test-model-2t"


@pytest.fixture(scope="module")
def cases():
    return expand(parse_suite(TINY_SUITE))  # two cases (probe, full), seed 0


def records(case, top1s, hw=HW, run_id="r0", first_seed=0):
    return [fake_record(case_id=case.case_id, spec_hash=case.spec_hash, seed=first_seed + i, run_id=run_id,
                        run_key=f"{case.case_id}-seed{first_seed + i}", metrics={"top1": t},
                        env={"hardware_key": hw}) for i, t in enumerate(top1s)]


def blessed(tmp_path, *groups):
    [blessing] = bless([r for g in groups for r in g], "tiny", tmp_path)
    return blessing.baseline


BASE = (0.80, 0.81, 0.82, 0.79, 0.80, 0.81)


def accuracy_of(verdict):
    return verdict.check_for("accuracy")


def test_judging_one_case_holds_it_to_the_whole_familys_standard(cases, tmp_path):
    probe, full = cases
    baseline = blessed(tmp_path, records(probe, BASE), records(full, BASE))
    run = records(probe, [0.78]) + records(full, [0.80])
    [alone] = judge(cases, run[:1], baseline, only={probe.case_id})  # the other case is not reported MISSING
    both = {v.case_id: v for v in judge(cases, run, baseline)}  # Holm over two cases
    assert alone.case_id == probe.case_id and set(both) == {probe.case_id, full.case_id}
    assert accuracy_of(alone).detectable_drop == pytest.approx(accuracy_of(both[probe.case_id]).detectable_drop)
    [single, missing] = judge(cases, run[:1], baseline)  # a run of one case: a family of one
    assert missing.status is Status.MISSING
    assert accuracy_of(single).detectable_drop < accuracy_of(alone).detectable_drop


def test_confirmation_reruns_only_the_chosen_cases_with_new_seeds_and_keeps_the_first_stage(cases, tmp_path):
    probe, full = cases
    baseline = blessed(tmp_path, records(probe, BASE), records(full, BASE))
    run = records(probe, [0.60]) + records(full, [0.81])
    first = judge(cases, run, baseline)
    asked: list = []

    def rerun(extra):
        asked.extend(extra)
        return [r for c in extra for r in records(c, [0.80], first_seed=c.seed, run_id="confirm")]

    confirmed = confirm_suspicious(first, {probe.case_id}, cases, run, 2, baseline, rerun)
    assert [(c.case_id, c.seed) for c in asked] == [(probe.case_id, 1), (probe.case_id, 2)]
    by_id = {v.case_id: v for v in confirmed}
    assert by_id[probe.case_id].initial is first[0] and by_id[probe.case_id].current_n == 3
    assert by_id[full.case_id] is first[1]  # not chosen: untouched
    assert confirm_suspicious(first, set(), cases, run, 2, baseline, rerun) is first
    assert confirm_suspicious(first, {probe.case_id}, cases, run, 0, baseline, rerun) is first
    assert len(asked) == 2  # neither of the last two calls re-ran anything


def test_require_noise_refuses_one_seed_cases_naming_how_many(cases, tmp_path):
    probe, full = cases
    baseline = blessed(tmp_path, records(probe, [0.8]), records(full, BASE[:2]))
    with pytest.raises(SftbenchError, match=r"holds one seed for 1 case\(s\) .*linear_probe"):
        ensure_noise(baseline, [probe.case_id, full.case_id])
    ensure_noise(baseline, [full.case_id, "not-in-the-baseline"])  # two seeds, or no entry: nothing to refuse


def test_a_baseline_sharing_no_case_with_the_run_is_refused(cases, tmp_path):
    probe, full = cases
    baseline = blessed(tmp_path, records(probe, BASE))
    with pytest.raises(SftbenchError, match=r"holds none of this run's 1 case\(s\), e.g. it has .*linear_probe"):
        ensure_covers(baseline, [full.case_id], "tiny")
    ensure_covers(baseline, [probe.case_id, full.case_id], "tiny")  # one shared case is enough
    ensure_covers(baseline, [], "tiny")  # an empty run is not refused here
    ensure_covers(baseline.model_copy(update={"cases": {}}), [full.case_id], "tiny")


def test_hardware_of_refuses_mixed_keys_and_defaults_to_cpu(cases):
    probe, _ = cases
    assert hardware_of([]) == "cpu"
    assert hardware_of(records(probe, [0.8, 0.8])) == HW
    with pytest.raises(SftbenchError, match="mix hardware keys"):
        hardware_of(records(probe, [0.8]) + records(probe, [0.8], hw="cpu-other-4t"))
    driver_made = records(probe, [0.8], hw="cpu-head-8t")[0].model_copy(update={"status": "failed"})
    assert hardware_of(records(probe, [0.8, 0.8]) + [driver_made]) == HW  # e.g. a Ray case no node could hold
    assert hardware_of([driver_made]) == "cpu-head-8t"


def write(path: Path, recs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(r.model_dump_json() + "\n" for r in recs))
    return path


def test_load_records_keeps_the_suites_records_and_falls_back_to_the_latest_run(cases, tmp_path):
    probe, _ = cases
    other = fake_record(suite="other", run_key="x-seed0")
    given = write(tmp_path / "given.jsonl", records(probe, [0.8]))
    assert [r.suite for r in load_records([given], tmp_path / "out", "tiny")] == ["tiny"]
    mixed = write(tmp_path / "mixed.jsonl", records(probe, [0.8]) + [other])  # a nightly pointed at the wrong file
    with pytest.raises(SftbenchError, match=r"mixed.jsonl holds records of suite 'other', not 'tiny'; pass --suite other"):
        load_records([mixed], tmp_path / "out", "tiny")
    with pytest.raises(SftbenchError, match=r"no record of suite 'tiny' in .*empty.jsonl; nothing to judge is never a pass"):
        load_records([write(tmp_path / "empty.jsonl", [])], tmp_path / "out", "tiny")
    with pytest.raises(SftbenchError, match=r"no results for suite 'tiny' under .*`sftbench run --suite tiny`"):
        load_records([], tmp_path / "out", "tiny")
    write(tmp_path / "out" / "tiny" / "r7.jsonl", records(probe, [0.7, 0.7], run_id="r7"))
    assert [r.run_id for r in load_records([], tmp_path / "out", "tiny")] == ["r7", "r7"]


def test_load_records_refuses_a_top1_that_disagrees_with_its_bits(cases, tmp_path):
    probe, _ = cases
    [record] = records(probe, [0.9])
    bits = PerExample.from_bools(np.arange(100) < 50, "digest").model_dump()  # 50 % right
    path = write(tmp_path / "edited.jsonl", [record.model_copy(update={"per_example": PerExample(**bits)})])
    with pytest.raises(SftbenchError, match=r"edited.jsonl.*90\.00 %.*50\.00 %"):
        load_records([path], tmp_path, "tiny")


def test_bless_writes_one_file_per_hardware_and_keeps_other_entries(cases, tmp_path):
    probe, full = cases
    first = bless(records(probe, BASE[:3]), "tiny", tmp_path)
    assert [b.path.name for b in first] == [f"{HW}.json"] and first[0].cases == 1
    again = bless(records(full, BASE[:3]) + records(probe, [0.7], hw="cpu-other-4t"), "tiny", tmp_path)
    assert [(b.path.name, b.cases) for b in again] == [("cpu-other-4t.json", 1), (f"{HW}.json", 2)]
    kept = json.loads((tmp_path / "tiny" / f"{HW}.json").read_text())["cases"]
    assert kept[probe.case_id]["accuracy"]["n"] == 3  # the earlier blessing's entry stays


def test_the_default_baselines_folder_sits_beside_the_suites_folder(tmp_path):
    assert default_baselines_dir(tmp_path / "repo" / "benchmarks" / "s.yaml") == (tmp_path / "repo" / "baselines").resolve()

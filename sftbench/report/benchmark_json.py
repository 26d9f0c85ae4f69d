"""Timings as pytest-benchmark JSON, so `pytest-benchmark compare` and dashboards read them.

One benchmark per case; each seed's run is a round whose duration is seconds per training
sample, so pytest-benchmark's `ops` column is the train throughput in samples/s. Statistics come
from pytest-benchmark's own `Stats`; machine and commit info from its own helpers.
"""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from pytest_benchmark import __version__
from pytest_benchmark.plugin import pytest_benchmark_generate_machine_info
from pytest_benchmark.stats import Stats
from pytest_benchmark.utils import get_commit_info

from ..files import write_atomic
from ..results.record import Record
from ..results.selection import latest_per_run_key


def benchmark_document(records: list[Record]) -> dict[str, Any]:
    by_case: dict[tuple[str, str], list[Record]] = {}
    for r in latest_per_run_key(records):
        if r.ok and r.throughput and r.throughput.train_samples_per_s:
            by_case.setdefault((r.suite, r.case_id), []).append(r)
    benchmarks = []
    for (suite, case_id), runs in sorted(by_case.items()):
        stats = Stats()
        for r in runs:
            stats.update(1.0 / r.throughput.train_samples_per_s)
        last = runs[-1]
        benchmarks.append({
            "group": suite, "name": case_id, "fullname": f"{suite}::{case_id}", "params": None, "param": None,
            "extra_info": {"unit": "seconds per training sample; ops = samples/s", "spec_hash": last.spec_hash,
                           "hardware_key": last.hardware_key, "seeds": [r.seed for r in runs],
                           "train_path": last.throughput.train_path,
                           "top1": [r.top1 for r in runs],
                           "eval_samples_per_s": [r.throughput.eval_samples_per_s for r in runs]},
            "options": {"timer": "sftbench device-synchronised perf_counter, warm-up steps excluded"},
            "stats": {**stats.as_dict(), "data": list(stats.data), "iterations": 1},
        })
    return {"machine_info": pytest_benchmark_generate_machine_info(), "commit_info": get_commit_info(),
            "benchmarks": benchmarks, "datetime": dt.datetime.now(dt.timezone.utc).isoformat(), "version": __version__}


def write_benchmark_json(path: Path, records: list[Record]) -> None:
    write_atomic(path, json.dumps(benchmark_document(records), indent=2, default=str) + "\n")

"""Tests never touch the network: hubs are declared offline and caches point into tmp folders."""
from __future__ import annotations

import copy
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml

_SESSION_TMP = Path(tempfile.mkdtemp(prefix="sftbench-tests-"))
os.environ["SFTBENCH_OFFLINE"] = "1"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_HOME"] = str(_SESSION_TMP / "hf")
os.environ["TORCH_HOME"] = str(_SESSION_TMP / "torch")
os.environ["SFTBENCH_CACHE"] = str(_SESSION_TMP / "cache")
os.environ.pop("SFTBENCH_DATA_ROOT", None)
# the machine calibration's small workload (~10 ms a reading, still real): tests run hundreds of cases
os.environ["SFTBENCH_CALIBRATION"] = "quick"
# Ray's driver reads its auth mode when Ray is imported, and `ray start` enables token auth once a token
# file exists (any local `ray.init()` writes one): the tests' clusters and drivers agree on it up front.
os.environ.setdefault("RAY_AUTH_MODE", "token")
# ... and share one token: without a token file (a fresh machine, or a test order in which no local
# `ray.init()` ran first) `ray start` refuses to start a token-auth head
if not os.environ.get("RAY_AUTH_TOKEN") and not (Path.home() / ".ray" / "auth_token").exists():
    import secrets

    os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(32)
# one console width for the CLI's tables everywhere: pytest-xdist's workers export COLUMNS=80, which
# the CLI honours, and a narrower table truncates the cells the tests read
os.environ["COLUMNS"] = "160"
# SFTBENCH_TEST_CPU_COUNT=16 python -m pytest: the suite as a machine of that many cores sees it
# (os.cpu_count decides the pool's default threads and workers); docs/testing.md has the runs
if os.environ.get("SFTBENCH_TEST_CPU_COUNT"):
    _FAKE_CORES = int(os.environ["SFTBENCH_TEST_CPU_COUNT"])
    os.cpu_count = lambda: _FAKE_CORES  # type: ignore[assignment]

TINY_SUITE: dict[str, Any] = {
    "name": "tiny",
    "description": "tiny synthetic suite for tests",
    "defaults": {"epochs": 2, "batch_size": 16, "image_size": 32, "optimizer": {"name": "sgd", "lr": 0.05},
                 "seeds": [0]},
    "matrix": {
        "backbones": [{"name": "test_efficientnet", "weights": "random"}],
        "datasets": [{"name": "synthetic", "val_fraction": 0.25, "options": {"train": 64, "test": 32, "size": 16}}],
        "strategies": ["linear_probe", "full"],
    },
}


@pytest.fixture
def tiny_suite() -> dict[str, Any]:
    return copy.deepcopy(TINY_SUITE)


@pytest.fixture
def write_suite(tmp_path: Path):
    def write(data: dict[str, Any], name: str = "tiny.yaml") -> Path:
        path = tmp_path / name
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    return write


FIXTURES = Path(__file__).parent / "fixtures"


def _merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in changes.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def fake_record(**changes: Any):
    """A valid Record: the first record of the committed v1 results file with `changes` deep-merged in."""
    import json

    from sftbench.results.record import Record

    template = json.loads((FIXTURES / "results-v1.jsonl").read_text().splitlines()[0])
    return Record.model_validate(_merge(template, changes))

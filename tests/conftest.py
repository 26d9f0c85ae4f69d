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

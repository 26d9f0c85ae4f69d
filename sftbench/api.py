"""The documented Python API: build a case in code, run it, get its record.

    from sftbench.api import make_case, run_case
    case = make_case("resnet18", {"name": "cifar10", "train_size": 5000}, "linear_probe", epochs=2)
    record = run_case(case, device="cuda")
    assert record["metrics"]["top1"] > 0.8
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Union

from .errors import ConfigError
from .results import Store, new_run_id
from .runner import RunOptions, resolve_device
from .runner import run_case as _run_case
from .spec import Case, expand, parse_suite

Entry = Union[str, dict[str, Any]]


def make_case(backbone: Entry, dataset: Entry, strategy: Entry = "full", *, seed: int = 0, suite: str = "adhoc",
              **train: Any) -> Case:
    """One case, validated exactly like a suite file (same errors); `train` sets `defaults` keys."""
    data = {"name": suite, "defaults": {**train, "seeds": [seed]},
            "matrix": {"backbones": [backbone], "datasets": [dataset], "strategies": [strategy]}}
    cases = expand(parse_suite(data, source="make_case()"))
    if len(cases) != 1:
        raise ConfigError(f"make_case() expanded to {len(cases)} cases; pass one backbone, dataset and strategy")
    return cases[0]


def run_case(case: Case, device: str = "auto", data_root: Optional[str] = None,
             out: Optional[Union[str, Path]] = None) -> dict[str, Any]:
    """Run one case; with `out`, also append its record to <out>/<suite>/<run-id>.jsonl."""
    record = _run_case(case, RunOptions(resolve_device(device), data_root))
    if out is not None:
        Store.for_run(Path(out), case.suite, new_run_id()).append(record)
    return record

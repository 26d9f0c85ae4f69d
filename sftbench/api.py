"""The documented Python API: build a case in code, run it, get its record.

    from sftbench import make_case, run_case
    case = make_case("resnet18", {"name": "cifar10", "train_size": 5000}, "linear_probe", epochs=2)
    record = run_case(case, device="cuda")
    assert record.metrics.top1 > 0.8
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Union

from .engine.device import resolve_device
from .engine.runner import RunOptions, run_and_store
from .engine.runner import run_case as run_case_with_options
from .errors import ConfigError
from .results.environment import new_run_id
from .results.record import Record
from .results.store import Store
from .suite.cases import Case, expand
from .suite.loader import parse_suite

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
             out: Optional[Union[str, Path]] = None) -> Record:
    """Run one case; with `out`, also append its record to <out>/<suite>/<run-id>.jsonl."""
    options = RunOptions(resolve_device(device), data_root)
    if out is None:
        return run_case_with_options(case, options)
    return run_and_store(case, Store.for_run(Path(out), case.suite, new_run_id()), options)

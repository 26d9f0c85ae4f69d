"""sftbench: a pytest-style benchmark and regression suite for transfer learning.

The curated public API; everything else is reachable through the subpackages (one per stage of
the data flow: suite, data, backbones, strategies, engine, results, regression, report, cli).
"""
from __future__ import annotations

from importlib import metadata

from .api import make_case, run_case
from .engine.device import resolve_device
from .engine.runner import RunOptions, run_cases
from .errors import ConfigError, SftbenchError
from .regression.compare import Status, Verdict
from .regression.gate import bless, judge
from .results.record import SCHEMA_VERSION, Record
from .results.store import Store, load_results, read_records
from .schema import Suite
from .strategies.base import ParamGroup, Params, Strategy, TrainPlan
from .suite.cases import Case, expand
from .suite.loader import load_suite, parse_suite
from .trust import allow_code

try:
    __version__ = metadata.version("sftbench")
except metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = [
    "SCHEMA_VERSION", "Case", "ConfigError", "allow_code", "ParamGroup", "Params", "Record", "RunOptions", "SftbenchError", "Status",
    "Store", "Strategy", "Suite", "TrainPlan", "Verdict", "__version__", "bless", "expand", "judge", "load_results",
    "load_suite", "make_case", "parse_suite", "read_records", "resolve_device", "run_case", "run_cases",
]

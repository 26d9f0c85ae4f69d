"""Options shared by the CLI (`--device`) and the pytest plugin (`--sftbench-device`): one
definition each, so both front ends mean the same thing."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from .errors import ConfigError


@dataclass(frozen=True)
class SharedOption:
    name: str  # CLI: --<name>; pytest: --sftbench-<name>
    help: str
    default: Any = None


DEVICE = SharedOption("device", "auto | cpu | cuda[:N] | mps", "auto")
SEEDS = SharedOption("seeds", "Override every case's seeds, e.g. 0,1,2")
DATA_ROOT = SharedOption("data-root", "Where datasets live (default: $SFTBENCH_DATA_ROOT or ~/.cache/sftbench/data).")
OUT = SharedOption("out", "Results folder: <out>/<suite>/<run-id>.jsonl", "results")
UPDATE_BASELINES = SharedOption("update-baselines", "Bless this session's results as the baselines afterwards.", False)
ALLOW_CODE = SharedOption("allow-code", "Let suites name code (`module:Class` strategies), which loading them "
                          "imports and runs; only for suites you trust (or SFTBENCH_ALLOW_CODE=1).", False)
BENCHMARK_JSON = SharedOption("benchmark-json", "Write timings as pytest-benchmark JSON to this file.")


def parse_seeds(text: Optional[str]) -> Optional[list[int]]:
    if text is None:
        return None
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise ConfigError(f"--seeds {text!r} is not a comma-separated list of integers; write e.g. --seeds 0,1,2") from None
    if not seeds or any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise ConfigError(f"--seeds {text!r} must list distinct non-negative integers, e.g. --seeds 0,1,2")
    return seeds


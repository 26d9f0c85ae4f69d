"""The dataset registry every loader module registers into; `data/datasets.py` imports them all."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..registry import Registry
from .types import RawDataset

Loader = Callable[[Path, dict[str, Any]], RawDataset]
DATASETS: Registry[Loader] = Registry("dataset", "sftbench list datasets")

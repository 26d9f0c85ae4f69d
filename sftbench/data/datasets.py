"""Every dataset sftbench knows: importing the loader modules registers them."""
from __future__ import annotations

from . import builtin, folder, transfer  # noqa: F401  (each registers its loaders)
from .registry import DATASETS

__all__ = ["DATASETS"]

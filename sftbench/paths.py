"""Where sftbench keeps caches and looks for data; all overridable by environment variables."""
from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """Converted weights and feature caches: $SFTBENCH_CACHE or ~/.cache/sftbench."""
    return Path(os.environ.get("SFTBENCH_CACHE", Path.home() / ".cache" / "sftbench"))


def data_root(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Dataset root: the suite's or --data-root value, else $SFTBENCH_DATA_ROOT, else the cache."""
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ.get("SFTBENCH_DATA_ROOT")
    return Path(env).expanduser() if env else cache_dir() / "data"

"""Where sftbench keeps caches and looks for data; all overridable by environment variables."""
from __future__ import annotations

import os
import re
from pathlib import Path

from .errors import ConfigError


def cache_dir() -> Path:
    """Converted weights and feature caches: $SFTBENCH_CACHE or ~/.cache/sftbench."""
    return Path(os.environ.get("SFTBENCH_CACHE", Path.home() / ".cache" / "sftbench"))


def data_root(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Dataset root: the suite's or --data-root value, else $SFTBENCH_DATA_ROOT, else the cache."""
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ.get("SFTBENCH_DATA_ROOT")
    return Path(env).expanduser() if env else cache_dir() / "data"


SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")  # no separators, no leading dot: never `..`


def check_safe_name(value: str, what: str) -> str:
    """A suite name or run id used as a path component: refuse anything that could leave its folder."""
    if not SAFE_NAME.match(value):
        raise ConfigError(
            f"{what} {value!r} is not a safe file name; use letters, digits, '_', '.' and '-' "
            "(starting with a letter or digit, at most 128 characters)"
        )
    return value

"""Where sftbench keeps caches and looks for data; all overridable by environment variables."""
from __future__ import annotations

import os
import re
from pathlib import Path

from .errors import ConfigError, short_repr


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
    if not isinstance(value, str) or not SAFE_NAME.fullmatch(value):  # fullmatch: `$` would let "r1\n" through
        raise ConfigError(
            f"{what} {short_repr(value)} is not a safe file name; use letters, digits, '_', '.' and '-' "
            "(starting with a letter or digit, at most 128 characters)"
        )
    return value


def under_root(root: Path, *names: str, suffix: str = "") -> Path:
    """`root/name1/.../nameN<suffix>` for names that are each a safe file name (a record's suite,
    run id or hardware key), checked to resolve inside `root`; refuses anything else in one sentence."""
    for name in names:
        check_safe_name(name, "file name")
    path = root.joinpath(*names[:-1], names[-1] + suffix) if names else root
    resolved_root = root.resolve()
    if not path.resolve().is_relative_to(resolved_root):  # a symlinked folder inside root pointing out
        raise ConfigError(f"{path} resolves outside {root}; remove the link that leads out of {root}")
    return path

"""Find a suite by path or by name: ./benchmarks, the source checkout, then the installed copies."""
from __future__ import annotations

import sys
from pathlib import Path

from ..errors import ConfigError, did_you_mean

DEFAULT_SUITE = "quickstart"


def search_dirs() -> list[Path]:
    here = Path(__file__).resolve().parent
    return [
        Path.cwd() / "benchmarks",
        here.parent.parent / "benchmarks",  # editable install / source checkout
        Path(sys.prefix) / "share" / "sftbench" / "benchmarks",  # wheel install (data-files)
    ]


def available_suites() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for folder in search_dirs():
        for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
            found.setdefault(path.stem, path)
    return found


def find_suite(name_or_path: str) -> Path:
    path = Path(name_or_path).expanduser()
    if path.suffix in (".yaml", ".yml") or path.is_file():
        if not path.is_file():
            raise ConfigError(f"suite file {name_or_path!r} does not exist; check the path")
        return path
    suites = available_suites()
    if name_or_path in suites:
        return suites[name_or_path]
    raise ConfigError(
        f"unknown suite {name_or_path!r}{did_you_mean(name_or_path, suites)}; "
        f"known suites: {', '.join(sorted(suites)) or 'none'} (or pass a path to a .yaml file)"
    )

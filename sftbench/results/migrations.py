"""Result schema versions: each older record is brought up to the current one, a newer one refused."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import ResultsFormatError, short_repr

SCHEMA_VERSION = 2


def _v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    """v2 added `per_example` and throughput windows; a v1 record has neither, and verdicts on it
    fall back to seed-level tests (the seed t-test, two proportions)."""
    return data


# version -> function that turns a record dict of that version into one of the next version.
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: _v1_to_v2}


def migrate(data: dict[str, Any], where: str) -> dict[str, Any]:
    """Bring a record dict up to SCHEMA_VERSION; refuse a version this sftbench does not know."""
    version = data.get("schema_version")
    if not isinstance(version, int) or version > SCHEMA_VERSION or version < 1:
        raise ResultsFormatError(
            f"{where}: result schema version {short_repr(version)} is newer than or unknown to this sftbench, which reads "
            f"versions 1 to {SCHEMA_VERSION}; upgrade sftbench (`pip install -U sftbench`) to read it"
        )
    while version < SCHEMA_VERSION:
        data = MIGRATIONS[version](data)
        version = data["schema_version"] = version + 1
    return data

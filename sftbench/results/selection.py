"""Which records count: the newest record of each run key, and each case's latest run."""
from __future__ import annotations

from collections.abc import Iterable

from ..errors import ConfigError
from .record import Record


def latest_per_run_key(records: Iterable[Record]) -> list[Record]:
    """The last record of each run key (a resumed or repeated case keeps its newest result)."""
    latest: dict[str, Record] = {}
    for record in records:
        latest.pop(record.run_key, None)
        latest[record.run_key] = record
    return list(latest.values())


def select_runs(records: list[Record], all_runs: bool = False) -> list[Record]:
    """Each case's most recently finished run (its seeds) by default; `all_runs` pools every run."""
    if all_runs:
        return list(records)
    finished: dict[tuple[str, str], str] = {}
    for r in records:
        key = (r.case_id, r.run_id)
        finished[key] = max(finished.get(key, ""), r.finished_at or "")
    latest: dict[str, str] = {}
    for (case_id, run_id), _ in sorted(finished.items(), key=lambda kv: kv[1]):
        latest[case_id] = run_id  # ascending time: the last assignment is the newest run
    return latest_per_run_key(r for r in records if latest[r.case_id] == r.run_id)


def on_node(records: list[Record], node: str) -> list[Record]:
    """The records of one node: `--node` is a host name, a `host/1a2b3c4d` label or a Ray node id prefix."""
    kept = [r for r in records if _names(r, node)]
    if not kept:
        seen = sorted({r.env.node_label for r in records})
        raise ConfigError(f"--node {node!r} matches no record in these results (their nodes: {', '.join(seen) or 'none'}); "
                          "pass a host name, a host/node label or the start of a Ray node id")
    return kept


def _names(record: Record, node: str) -> bool:
    where = record.env.node
    if where is None:
        return False
    return node in (where.host, record.env.node_label) or bool(where.ray_node_id and where.ray_node_id.startswith(node))

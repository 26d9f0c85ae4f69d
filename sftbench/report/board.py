"""Records -> one leaderboard row per case (pandas): accuracy over seeds, transfer gain, speed, Pareto.

Pure data work; rendering lives in report/leaderboard.py and report/plots.py.
"""
from __future__ import annotations

import statistics
from typing import Any, Optional

import pandas as pd

from ..results.record import Record
from ..results.selection import select_runs

SORT_KEYS = {"accuracy": "top1_mean", "throughput": "train_wall_samples_per_s", "efficiency": "efficiency"}
WEIGHT_TAGS = {"pretrained": "", "random": " [random]"}  # anything else is a weights file


def leaderboard_frame(records: list[Record], all_runs: bool = False, by_node: bool = False) -> pd.DataFrame:
    """One row per (suite, case_id), or per node too (`by_node`: speeds of different machines are not
    pooled), ranked later; failed cases keep a row with their error."""
    groups: dict[tuple[str, str, str], list[Record]] = {}
    for r in select_runs(records, all_runs):
        groups.setdefault((r.suite, r.case_id, r.env.node_label if by_node else ""), []).append(r)
    if not groups:
        return pd.DataFrame()
    rows = [{**_row(suite, case_id, group), **({"node": node} if by_node else {})}
            for (suite, case_id, node), group in groups.items()]
    board = pd.DataFrame(rows)
    board["transfer_gain"] = _transfer_gain(board)
    board["efficiency"] = board["top1_mean"] * board["train_wall_samples_per_s"]
    board["pareto"] = pareto_front(board)
    return board


def _median(values: list[Optional[float]]) -> Optional[float]:
    present = [v for v in values if v is not None]
    return float(statistics.median(present)) if present else None


def _row(suite: str, case_id: str, group: list[Record]) -> dict[str, Any]:
    ok = [r for r in group if r.ok and r.metrics and r.throughput]
    first = group[0]
    top1 = pd.Series([r.metrics.top1 for r in ok], dtype=float)
    failed = [r for r in group if not r.ok]
    return {
        "suite": suite, "case_id": case_id,
        "backbone": first.labels.backbone, "dataset": first.labels.dataset, "strategy": first.labels.strategy,
        "backbone_shown": backbone_shown(first),
        "architecture": first.spec["backbone"]["name"].split(".", 1)[0],
        "weights": str(first.spec["backbone"]["weights"]),
        "top1_mean": top1.mean() if len(top1) else None,
        "top1_std": top1.std() if len(top1) > 1 else None,
        "n": len(top1),
        "train_samples_per_s": _median([r.throughput.train_samples_per_s for r in ok]),  # timed steps (head-only for cached probes)
        "train_wall_samples_per_s": _median([r.train_wall_samples_per_s for r in ok]),  # the comparable cost
        "train_wall_s": _median([r.timings_s.get("train") for r in ok]),
        # a warm feature cache skips extraction, so that run's wall cost leaves it out: flagged, not hidden
        "warm_features": any(r.features is not None and r.features.reused > 0 for r in ok),
        "eval_samples_per_s": _median([r.throughput.eval_samples_per_s for r in ok]),
        "train_path": ok[-1].throughput.train_path if ok else None,
        "peak_mb": _median([r.memory.peak_mb if r.memory else None for r in ok]),
        "trainable_fraction": _median([r.params.trainable_fraction if r.params else None for r in ok]),
        "params_total": ok[-1].params.total if ok and ok[-1].params else None,
        "wall_s": statistics.fmean(r.timings_s.get("total", 0.0) for r in ok) if ok else None,
        "failed": bool(failed),
        "error": "; ".join(r.error_message for r in failed),
    }


def backbone_shown(record: Record) -> str:
    """The backbone as people say it: the model name with a weights tag (`resnet50 [random]`); a
    label the suite set with `id:` is shown as written."""
    spec = record.spec.get("backbone", {})
    name = str(spec.get("name", record.labels.backbone)).split(":", 1)[-1]
    if record.labels.backbone not in {name, f"{name}-random", f"{name}-file"}:
        return record.labels.backbone
    weights = spec.get("weights", "pretrained")  # a string, or {file: PATH}
    return name + (WEIGHT_TAGS.get(weights, " [file]") if isinstance(weights, str) else " [file]")


def _transfer_gain(board: pd.DataFrame) -> pd.Series:
    """Accuracy minus that of the same architecture from random init, same dataset and strategy."""
    random = board[board["weights"] == "random"].set_index(["architecture", "dataset", "strategy"])["top1_mean"]

    def gain(row: pd.Series) -> Optional[float]:
        if row["weights"] == "random" or row["top1_mean"] is None or pd.isna(row["top1_mean"]):
            return None
        key = (row["architecture"], row["dataset"], row["strategy"])
        return row["top1_mean"] - random[key] if key in random.index and pd.notna(random[key]) else None

    return board.apply(gain, axis=1) if len(board) else pd.Series(dtype=float)


def pareto_front(board: pd.DataFrame, x: str = "train_wall_samples_per_s", y: str = "top1_mean") -> pd.Series:
    """True where no other case is at least as accurate and as cheap, and strictly better in one.

    The cost is the train phase's wall time per image seen, feature extraction included, so a
    cached probe competes honestly with a fine-tune."""
    points = board[[x, y]].astype(float)
    front = []
    for i, (px, py) in points.iterrows():
        if pd.isna(px) or pd.isna(py):
            front.append(False)
            continue
        dominated = ((points[x] >= px) & (points[y] >= py) & ((points[x] > px) | (points[y] > py))).any()
        front.append(not dominated)
    return pd.Series(front, index=board.index, dtype=bool)


def rank(board: pd.DataFrame, sort: str = "accuracy", dataset: Optional[str] = None) -> pd.DataFrame:
    """Filter and sort: best first, failed cases at the bottom."""
    if dataset is not None:
        board = board[board["dataset"] == dataset]
    key = SORT_KEYS[sort]
    return board.sort_values(["failed", key], ascending=[True, False], na_position="last").reset_index(drop=True)


def groups(board: pd.DataFrame, group_by: list[str]) -> list[tuple[str, pd.DataFrame]]:
    if not group_by:
        return [("", board)]
    return [(" · ".join(f"{k}={v}" for k, v in zip(group_by, key if isinstance(key, tuple) else (key,))), part)
            for key, part in board.groupby(group_by, sort=True)]

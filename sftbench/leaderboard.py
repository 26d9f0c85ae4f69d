"""Results -> one leaderboard row per case (pandas): accuracy over seeds, transfer gain, speed, Pareto.

Pure data work; rendering lives in report.py and plots.py.
"""
from __future__ import annotations

from typing import Any, Optional

import pandas as pd

from .summary import latest_per_run_key

SORT_KEYS = {"accuracy": "top1_mean", "throughput": "train_samples_per_s", "efficiency": "efficiency"}


def select_runs(records: list[dict[str, Any]], all_runs: bool = False) -> list[dict[str, Any]]:
    """Each case's most recently finished run (its seeds) by default; `all_runs` pools every run."""
    if all_runs:
        return list(records)
    finished: dict[tuple[str, str], str] = {}
    for r in records:
        key = (r["case_id"], r["run_id"])
        finished[key] = max(finished.get(key, ""), r.get("finished_at", ""))
    latest: dict[str, str] = {}
    for (case_id, run_id), when in sorted(finished.items(), key=lambda kv: kv[1]):
        latest[case_id] = run_id  # ascending time: the last assignment is the newest run
    return latest_per_run_key(r for r in records if latest[r["case_id"]] == r["run_id"])


def leaderboard_frame(records: list[dict[str, Any]], all_runs: bool = False) -> pd.DataFrame:
    """One row per (suite, case_id), ranked later; failed cases keep a row with their error."""
    rows = []
    frame = pd.json_normalize(select_runs(records, all_runs), sep=".")
    if frame.empty:
        return pd.DataFrame()
    for (suite, case_id), group in frame.groupby(["suite", "case_id"], sort=False):
        ok = group[group["status"] == "ok"]
        first = group.iloc[0]
        top1 = ok["metrics.top1"] if len(ok) else pd.Series(dtype=float)
        rows.append({
            "suite": suite, "case_id": case_id,
            "backbone": first["labels.backbone"], "dataset": first["labels.dataset"],
            "strategy": first["labels.strategy"], "architecture": first["spec.backbone.name"].split(".", 1)[0],
            "weights": str(first["spec.backbone.weights"]),
            "top1_mean": top1.mean() if len(top1) else None,
            "top1_std": top1.std() if len(top1) > 1 else None,
            "n": len(top1),
            "train_samples_per_s": ok["throughput.train_samples_per_s"].median() if len(ok) else None,
            "eval_samples_per_s": ok["throughput.eval_samples_per_s"].median() if len(ok) else None,
            "train_path": ok["throughput.train_path"].iloc[-1] if len(ok) and "throughput.train_path" in ok else None,
            "peak_mb": ok["memory.peak_mb"].median() if len(ok) else None,
            "trainable_fraction": ok["params.trainable_fraction"].median() if len(ok) else None,
            "params_total": ok["params.total"].iloc[-1] if len(ok) else None,
            "wall_s": ok["timings_s.total"].mean() if len(ok) else None,
            "failed": len(ok) < len(group),
            "error": "; ".join(group.loc[group["status"] != "ok", "error.message"].astype(str)) if len(ok) < len(group) else "",
        })
    board = pd.DataFrame(rows)
    board["transfer_gain"] = _transfer_gain(board)
    board["efficiency"] = board["top1_mean"] * board["train_samples_per_s"]
    board["pareto"] = pareto_front(board)
    return board


def _transfer_gain(board: pd.DataFrame) -> pd.Series:
    """Accuracy minus that of the same architecture from random init, same dataset and strategy."""
    random = board[board["weights"] == "random"].set_index(["architecture", "dataset", "strategy"])["top1_mean"]

    def gain(row: pd.Series) -> Optional[float]:
        if row["weights"] == "random" or row["top1_mean"] is None or pd.isna(row["top1_mean"]):
            return None
        key = (row["architecture"], row["dataset"], row["strategy"])
        return row["top1_mean"] - random[key] if key in random.index and pd.notna(random[key]) else None

    return board.apply(gain, axis=1) if len(board) else pd.Series(dtype=float)


def pareto_front(board: pd.DataFrame, x: str = "train_samples_per_s", y: str = "top1_mean") -> pd.Series:
    """True where no other case is at least as accurate and as fast, and strictly better in one.

    Probes trained on cached features are left out: their speed is the head's alone, not
    comparable with training on images."""
    points = board[[x, y]].astype(float)
    if "train_path" in board:
        points[board["train_path"] == "cached_features"] = float("nan")
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

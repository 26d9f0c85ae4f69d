"""Pictures of a leaderboard: accuracy vs throughput (Pareto front drawn), and validation curves."""
from __future__ import annotations

from pathlib import Path

import matplotlib
import pandas as pd

matplotlib.use("Agg")  # files only, never a window
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)

from ..results.record import Record

MARKERS = "osD^vP*Xh<>p"


def accuracy_vs_throughput(board: pd.DataFrame, path: Path, title: str) -> None:
    """Scatter (log x): colour per strategy, marker per backbone, error bars from seeds, front as a line."""
    ok = board[~board["failed"] & board["top1_mean"].notna() & board["train_samples_per_s"].notna()]
    fig, ax = plt.subplots(figsize=(8, 5), dpi=100)
    strategies = sorted(ok["strategy"].unique())
    palette = plt.cm.tab10 if len(strategies) <= 10 else plt.cm.tab20
    colours = {s: palette(i % palette.N) for i, s in enumerate(strategies)}
    markers = {b: MARKERS[i % len(MARKERS)] for i, b in enumerate(sorted(ok["backbone"].unique()))}
    for _, row in ok.iterrows():
        ax.errorbar(row["train_samples_per_s"], 100 * row["top1_mean"],
                    yerr=100 * row["top1_std"] if pd.notna(row["top1_std"]) else None,
                    fmt=markers[row["backbone"]], color=colours[row["strategy"]], markersize=8, capsize=3)
    front = ok[ok["pareto"]].sort_values("train_samples_per_s")
    ax.plot(front["train_samples_per_s"], 100 * front["top1_mean"], "--", color="grey", label="Pareto front")
    for strategy, colour in colours.items():
        ax.plot([], [], "s", color=colour, label=strategy)
    for backbone, marker in markers.items():
        ax.plot([], [], marker, color="black", fillstyle="none", label=backbone)
    ax.set_xscale("log")
    ax.set_xlabel("train throughput (samples/s, log scale)")
    ax.set_ylabel("test top-1 (%)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def validation_curves(records: list[Record], path: Path, title: str) -> None:
    """Per-epoch validation top-1 of each case and seed."""
    fig, ax = plt.subplots(figsize=(8, 5), dpi=100)
    for r in records:
        history = [h for h in r.history if h.get("val_top1") is not None]
        if history:
            ax.plot([h["epoch"] for h in history], [100 * h["val_top1"] for h in history], marker="o",
                    label=r.run_key)
    ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation top-1 (%)")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=6, loc="best")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)

"""Pictures of a leaderboard, one panel per dataset: accuracy vs cost, the grid heatmap, and
validation curves. Each function returns the matplotlib Figure (tests inspect it); `save` writes it.
"""
from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any

import matplotlib
import pandas as pd

matplotlib.use("Agg")  # files only, never a window
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)

from ..results.record import Record  # noqa: E402
from .grid import Grid  # noqa: E402

MARKERS = "osD^vP*Xh<>p"
COST_LABEL = "training images per second of train wall time (log; feature extraction included)"


def save(fig: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def _panels(count: int, width: float = 6.5, height: float = 4.5) -> tuple[Any, list[Any]]:
    columns = min(count, 3)
    rows = math.ceil(count / columns) if count else 1
    fig, axes = plt.subplots(rows, columns, figsize=(width * columns, height * rows), dpi=100, squeeze=False)
    flat = list(axes.flat)
    for extra in flat[count:]:
        extra.set_visible(False)
    return fig, flat[:max(count, 1)]


def accuracy_vs_cost(board: pd.DataFrame, title: str) -> Any:
    """Per dataset: top-1 vs the comparable cost; colour per strategy, marker per backbone, error
    bars over seeds, and the Pareto front as a dashed line."""
    ok = board[~board["failed"] & board["top1_mean"].notna() & board["train_wall_samples_per_s"].notna()]
    datasets = sorted(ok["dataset"].unique())
    fig, axes = _panels(len(datasets))
    palette = plt.cm.tab10
    colours = {s: palette(i % palette.N) for i, s in enumerate(sorted(ok["strategy"].unique()))}
    markers = {b: MARKERS[i % len(MARKERS)] for i, b in enumerate(sorted(ok["backbone_shown"].unique()))}
    for ax, dataset in zip(axes, datasets):
        part = ok[ok["dataset"] == dataset]
        for _, row in part.iterrows():
            ax.errorbar(row["train_wall_samples_per_s"], 100 * row["top1_mean"],
                        yerr=100 * row["top1_std"] if pd.notna(row["top1_std"]) else None,
                        fmt=markers[row["backbone_shown"]], color=colours[row["strategy"]], markersize=8, capsize=3)
        front = part[part["pareto"]].sort_values("train_wall_samples_per_s")
        ax.plot(front["train_wall_samples_per_s"], 100 * front["top1_mean"], "--", color="grey")
        ax.set_xscale("log")
        ax.set_title(f"{dataset}", fontsize=10)
        ax.set_xlabel(COST_LABEL, fontsize=8)
        ax.set_ylabel("test top-1 (%)")
        ax.grid(True, which="both", alpha=0.3)
    handles = [plt.Line2D([], [], marker="s", ls="", color=c, label=s) for s, c in colours.items()]
    handles += [plt.Line2D([], [], marker=m, ls="", color="black", fillstyle="none", label=b) for b, m in markers.items()]
    handles.append(plt.Line2D([], [], ls="--", color="grey", label="Pareto front"))
    axes[0].legend(handles=handles, fontsize=7, loc="best")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def grid_heatmap(found: list[Grid], title: str) -> Any:
    """The grid view as heatmaps: backbones x strategies, top-1 % written in each cell."""
    fig, axes = _panels(len(found), width=2.2 + 1.6 * max((len(g.strategies) for g in found), default=1),
                        height=1.5 + 0.6 * max((len(g.backbones) for g in found), default=1))
    for ax, grid in zip(axes, found):
        values = (100 * grid.mean.astype(float)).to_numpy()
        image = ax.imshow(values, cmap="viridis", aspect="auto")
        ax.set_xticks(range(len(grid.strategies)), grid.strategies, rotation=30, ha="right", fontsize=8)
        ax.set_yticks(range(len(grid.backbones)), grid.backbones, fontsize=8)
        for (i, j), value in pd.DataFrame(values).stack().items():
            ax.text(j, i, f"{value:.1f}", ha="center", va="center", color="white", fontsize=8)
        ax.set_title(grid.dataset, fontsize=10)
        fig.colorbar(image, ax=ax, label="top-1 %")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def validation_curves(records: list[Record], title: str) -> Any:
    """Per dataset: validation top-1 per epoch, mean over seeds with a ±1 sd band, one line per case."""
    datasets = sorted({r.labels.dataset for r in records})
    fig, axes = _panels(len(datasets))
    for ax, dataset in zip(axes, datasets):
        for case_id, curve in sorted(_curves([r for r in records if r.labels.dataset == dataset]).items()):
            epochs = sorted(curve)
            means = [statistics.fmean(curve[e]) for e in epochs]
            sds = [statistics.stdev(curve[e]) if len(curve[e]) > 1 else 0.0 for e in epochs]
            (line,) = ax.plot(epochs, means, marker="o", label=case_id)
            ax.fill_between(epochs, [m - s for m, s in zip(means, sds)], [m + s for m, s in zip(means, sds)],
                            color=line.get_color(), alpha=0.2)
        ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
        ax.set_title(dataset, fontsize=10)
        ax.set_xlabel("epoch")
        ax.set_ylabel("validation top-1 (%)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=6, loc="best")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def _curves(records: list[Record]) -> dict[str, dict[int, list[float]]]:
    """case -> epoch -> validation top-1 (%) of each seed."""
    out: dict[str, dict[int, list[float]]] = {}
    for r in records:
        for h in r.history:
            if h.get("val_top1") is not None:
                out.setdefault(r.case_id, {}).setdefault(int(h["epoch"]), []).append(100 * h["val_top1"])
    return out


def score_vs_accuracy(frame: pd.DataFrame, title: str) -> Any:
    """One panel per (dataset, score): each candidate's score against its fine-tuned top-1."""
    ok = frame[frame["value"].notna() & frame["fine_tuned_top1"].notna()]
    pairs = list(dict.fromkeys(zip(ok["dataset"], ok["score"])))
    fig, axes = _panels(len(pairs), width=4.0, height=3.2)
    for ax, (dataset, score) in zip(axes, pairs):
        part = ok[(ok["dataset"] == dataset) & (ok["score"] == score)]
        ax.scatter(part["value"], 100 * part["fine_tuned_top1"])
        for row in part.itertuples():
            ax.annotate(row.backbone, (row.value, 100 * row.fine_tuned_top1), fontsize=6)
        ax.set_title(f"{dataset} · {score}", fontsize=9)
        ax.set_xlabel(score, fontsize=8)
        ax.set_ylabel("fine-tuned top-1 (%)", fontsize=8)
        ax.grid(True, alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def depth_plot(curves: list[Any], title: str) -> Any:
    """Per backbone × dataset: top-1 (seed sd band) against the fraction of parameters trained, the
    train time on a second axis; last_k points labelled by k, other strategies by name."""
    fig, axes = _panels(len(curves))
    for ax, curve in zip(axes, curves):
        ordered = [p for p in curve.points if p.depth is not None]
        x = [100 * p.trainable_fraction for p in ordered]
        mean = [100 * p.mean for p in ordered]
        sd = [100 * (p.sd or 0.0) for p in ordered]
        ax.plot(x, mean, "o-", color="tab:blue", label="top-1 (depth 0 … full)")
        ax.fill_between(x, [m - s for m, s in zip(mean, sd)], [m + s for m, s in zip(mean, sd)], color="tab:blue",
                        alpha=0.2)
        for point in curve.points:
            ax.annotate(str(point.depth) if point.depth is not None else point.label,
                        (100 * point.trainable_fraction, 100 * point.mean), textcoords="offset points", xytext=(3, 4),
                        fontsize=7)
            if point.depth is None:
                ax.errorbar(100 * point.trainable_fraction, 100 * point.mean, yerr=100 * (point.sd or 0.0), fmt="s",
                            color="tab:green", capsize=3)
        cost = ax.twinx()
        timed = [p for p in ordered if p.train_s is not None]
        cost.plot([100 * p.trainable_fraction for p in timed], [p.train_s for p in timed], "x--", color="tab:red")
        cost.set_ylabel("train wall time (s)", color="tab:red", fontsize=8)
        ax.set_xscale("symlog", linthresh=1.0)
        ax.set_xlabel("parameters trained (%, symlog)", fontsize=8)
        ax.set_ylabel("test top-1 (%)")
        ax.set_title(f"{curve.backbone} · {curve.dataset}", fontsize=10)
        ax.grid(True, alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    return fig

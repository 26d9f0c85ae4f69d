"""The depth curve: top-1 against how much of the backbone is fine-tuned, and the one-line answer.

Per backbone × dataset: the probe (depth 0), last_k for k = 1 .. n-1 and full (depth n, every
stage) in order, with any other strategy (bitfit, norm_only, lp_ft, llrd) placed by its trainable
fraction; each with its seed mean ± sd and its train time. The answer is the shallowest depth whose
mean is within the seed noise of the best depth's (difference ≤ 2 standard errors of the
difference), with its difference to full and its share of full's train time.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Optional

from rich.table import Table

from ..backbones.stages import count_stages
from ..results.record import Record
from ..schema import BackboneSpec
from .escape import terminal_text

NOISE_SE = 2.0  # "within the seed noise": a difference of at most this many standard errors


@dataclass(frozen=True)
class DepthPoint:
    label: str  # the strategy label (linear_probe, last_k-k3, full, bitfit ...) and any sweep point
    depth: Optional[int]  # stages fine-tuned: 0 probe, k for last_k, n for full; None for other strategies
    trainable_fraction: float
    values: tuple[float, ...]  # top-1 per seed
    train_s: Optional[float]  # median train wall time

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values)

    @property
    def sd(self) -> Optional[float]:
        return statistics.stdev(self.values) if len(self.values) > 1 else None

    @property
    def se(self) -> Optional[float]:
        return self.sd / math.sqrt(len(self.values)) if self.sd is not None else None


@dataclass(frozen=True)
class DepthCurve:
    backbone: str
    dataset: str
    stages: int
    points: list[DepthPoint]  # shallow to deep by trainable fraction

    def at_depth(self, depth: int) -> Optional[DepthPoint]:
        return next((p for p in self.points if p.depth == depth), None)


def _depth(record: Record, stages: int) -> Optional[int]:
    name = record.spec["strategy"]["name"]
    if name == "linear_probe":
        return 0
    if name == "full":
        return stages
    return int(record.spec["strategy"]["params"]["k"]) if name == "last_k" else None


def depth_curves(records: list[Record]) -> list[DepthCurve]:
    """One curve per backbone × dataset that has a probe or last_k point besides full."""
    groups: dict[tuple[str, str], dict[str, list[Record]]] = {}
    for record in records:
        if record.ok and record.metrics and record.params:
            key = (record.labels.backbone, record.labels.dataset)
            groups.setdefault(key, {}).setdefault(record.case_id, []).append(record)
    curves = []
    for (backbone, dataset), cases in groups.items():
        first = next(iter(cases.values()))[0]
        stages = count_stages(BackboneSpec.model_validate(first.spec["backbone"]))
        points = [_point(mine, stages) for mine in cases.values()]
        if sum(p.depth is not None for p in points) >= 2:
            curves.append(DepthCurve(backbone, dataset, stages, sorted(points, key=_order)))
    return sorted(curves, key=lambda c: (c.dataset, c.backbone))


def _order(point: DepthPoint) -> tuple[float, float]:
    return (point.trainable_fraction, point.depth if point.depth is not None else -1)


def _point(records: list[Record], stages: int) -> DepthPoint:
    times = [r.timings_s.get("train") for r in records if r.timings_s.get("train") is not None]
    return DepthPoint(_label(records[0]), _depth(records[0], stages),
                      statistics.median(r.params.trainable_fraction for r in records),
                      tuple(r.metrics.top1 for r in records), statistics.median(times) if times else None)


def _label(record: Record) -> str:
    """The strategy with any sweep point the case id names (`full-lr0.1` under --all-points)."""
    prefix = f"{record.labels.backbone}-{record.labels.dataset}-"
    return record.case_id.removeprefix(prefix) if record.case_id.startswith(prefix) else record.labels.strategy


def _within_noise(point: DepthPoint, best: DepthPoint) -> bool:
    if point is best:
        return True
    return best.mean - point.mean <= NOISE_SE * math.hypot(point.se, best.se)


def answer(curve: DepthCurve) -> str:
    """The shallowest depth within the seed noise of the best, against full."""
    ranked = [p for p in curve.points if p.depth is not None]
    if any(p.se is None for p in ranked):
        return f"{curve.backbone} on {curve.dataset}: run at least two seeds per depth to tell depths apart"
    best = max(ranked, key=lambda p: p.mean)
    chosen = min((p for p in ranked if _within_noise(p, best)), key=lambda p: p.depth)
    full = curve.at_depth(curve.stages)
    what = ("a linear probe (no stage)" if chosen.depth == 0 else "every stage (full)" if chosen.depth == curve.stages
            else f"the last {chosen.depth} of {curve.stages} stages")
    text = f"{curve.backbone} on {curve.dataset}: fine-tune {what}"
    if full is None or chosen is full:
        return text + ("; nothing shallower is within the seed noise of the best" if full is chosen else "")
    delta, se = 100 * (chosen.mean - full.mean), 100 * math.hypot(chosen.se, full.se)
    cost = f" at {100 * chosen.train_s / full.train_s:.0f} % of its train time" if chosen.train_s and full.train_s else ""
    return text + f": {delta:+.1f} ± {se:.1f} pp against full{cost}"


def _cells(point: DepthPoint, full: Optional[DepthPoint]) -> list[str]:
    sd = f" ± {100 * point.sd:.2f}" if point.sd is not None else ""
    share = f"{100 * point.train_s / full.train_s:.0f} %" if full and full.train_s and point.train_s else "-"
    return ["-" if point.depth is None else str(point.depth), point.label, f"{100 * point.trainable_fraction:.1f} %",
            f"{100 * point.mean:.2f}{sd} ({len(point.values)})",
            f"{point.train_s:.1f}" if point.train_s is not None else "-", share]


HEADERS = ["depth", "strategy", "trainable", "top-1 % (seeds)", "train s", "of full's time"]


def rich_depth(curve: DepthCurve) -> Table:
    table = Table(title=f"depth · {curve.backbone} · {curve.dataset} ({curve.stages} stages)", title_justify="left",
                  caption=answer(curve), caption_justify="left")
    for header in HEADERS:
        table.add_column(header, justify="left" if header == "strategy" else "right")
    for point in curve.points:
        table.add_row(*map(terminal_text, _cells(point, curve.at_depth(curve.stages))))
    return table


def markdown_depth(curve: DepthCurve) -> str:
    rows = [_cells(p, curve.at_depth(curve.stages)) for p in curve.points]
    lines = [f"**{curve.backbone} · {curve.dataset}** ({curve.stages} stages)", "",
             "| " + " | ".join(HEADERS) + " |", "|" + "---:|" * len(HEADERS)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines + ["", answer(curve), ""])

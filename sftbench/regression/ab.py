"""The statistics of `sftbench ab`: paired speed ratios B/A per case over interleaved rounds, and
the accuracy difference by exact McNemar on the per-example bits of matching seeds.

Speed: each round gives one ratio per case (medians over its seeds); the ratio reported is the
geometric mean over rounds with a two-sided t interval on the log ratios, and a paired t-test
of "no change" gives each (case, metric) its p-value. Holm runs over every speed comparison of
the run, so a suite of many cases does not raise false alarms by sheer number (an A/A of 4
cases x 2 metrics at 5 % each would otherwise fail a third of the time). B is REGRESSED when its
Holm-adjusted p is below alpha, B is slower and the ratio is below 1 - tolerance (IMPROVED
mirror-wise). Rounds share the machine's state of the moment, so the machine's speed cancels in
each ratio.
Accuracy: seeds are fixed, so one round's bits per seed are the whole evidence; REGRESSED when
B loses examples significantly (Holm across the cases), NOISE when it loses some but not
significantly.
"""
from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Optional

from scipy import stats

from ..results.record import Record
from .checks import Status
from .stats import holm, mcnemar

SPEEDS = {"train_throughput": "train_samples_per_s", "eval_throughput": "eval_samples_per_s"}
VERSION_KEYS = ("torch", "timm", "sftbench", "python", "cuda")


@dataclass
class Ratio:
    metric: str
    ratio: Optional[float]  # geometric mean of B/A over rounds
    low: Optional[float]  # the interval at `confidence`
    high: Optional[float]
    rounds: int
    status: Status
    per_round: list[float] = field(default_factory=list)
    p_value: Optional[float] = None  # paired t-test of log B/A = 0 (None under two rounds)
    p_adjusted: Optional[float] = None  # Holm over every speed comparison of the run


@dataclass
class AccuracyDiff:
    a_top1: Optional[float]
    b_top1: Optional[float]
    losses: int = 0  # right under A, wrong under B
    gains: int = 0
    p_value: Optional[float] = None
    p_adjusted: Optional[float] = None
    status: Status = Status.SKIPPED


@dataclass
class AbCase:
    case_id: str
    status: Status
    reason: str
    speeds: list[Ratio]
    accuracy: AccuracyDiff
    failed: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"] = self.status.value
        for item in (*data["speeds"], data["accuracy"]):
            item["status"] = item["status"].value
        return data


def ratio_interval(ratios: Sequence[float], confidence: float) -> tuple[float, Optional[float], Optional[float]]:
    """Geometric mean of paired ratios and its two-sided t interval (None with one round)."""
    logs = [math.log(r) for r in ratios]
    mean = statistics.fmean(logs)
    if len(logs) < 2:
        return math.exp(mean), None, None
    half = stats.t.isf((1 - confidence) / 2, len(logs) - 1) * statistics.stdev(logs) / math.sqrt(len(logs))
    return math.exp(mean), math.exp(mean - half), math.exp(mean + half)


def ratio_p_value(ratios: Sequence[float]) -> Optional[float]:
    """Two-sided paired t-test of mean log ratio 0; rounds that all agree exactly give p 0 or 1."""
    logs = [math.log(r) for r in ratios]
    if len(logs) < 2:
        return None
    spread = statistics.stdev(logs)
    if spread == 0:
        return 1.0 if statistics.fmean(logs) == 0 else 0.0
    t = statistics.fmean(logs) / (spread / math.sqrt(len(logs)))
    return float(2 * stats.t.sf(abs(t), len(logs) - 1))


def measure_ratio(metric: str, per_round: Sequence[float], confidence: float) -> Ratio:
    """The ratio, its interval and p-value; the status waits for Holm over the whole run."""
    if not per_round:
        return Ratio(metric, None, None, None, 0, Status.SKIPPED)
    ratio, low, high = ratio_interval(per_round, confidence)
    return Ratio(metric, ratio, low, high, len(per_round), Status.PASS, [round(r, 4) for r in per_round],
                 ratio_p_value(per_round))


def decide_speed(r: Ratio, p_adjusted: Optional[float], tolerance: float, alpha: float) -> Ratio:
    r.p_adjusted = p_adjusted
    if r.ratio is None:
        return r
    significant = p_adjusted is not None and p_adjusted < alpha
    if significant and r.ratio < 1 - tolerance:
        r.status = Status.REGRESSED
    elif significant and r.ratio > 1 + tolerance:
        r.status = Status.IMPROVED
    else:
        r.status = Status.NOISE if r.ratio < 1 - tolerance else Status.PASS
    return r


def judge_speeds(ratios: list[Ratio], tolerance: float, alpha: float) -> None:
    """Every speed comparison of the run decided together: Holm over those with a p-value."""
    tested = [r for r in ratios if r.p_value is not None]
    adjusted = dict(zip(map(id, tested), holm([r.p_value for r in tested])))  # type: ignore[misc]
    for r in ratios:
        decide_speed(r, adjusted.get(id(r)), tolerance, alpha)


def _median(values: list[Optional[float]]) -> Optional[float]:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def _speed(records: list[Record], field_name: str) -> Optional[float]:
    ok = [r for r in records if r.ok and r.throughput is not None]
    if field_name == "train_samples_per_s":  # a probe on cached features times only its head
        ok = [r for r in ok if r.throughput.train_path != "cached_features"]  # type: ignore[union-attr]
    return _median([getattr(r.throughput, field_name) for r in ok])


def paired_ratios(a: dict[int, list[Record]], b: dict[int, list[Record]], case_id: str, field_name: str) -> list[float]:
    """B/A per round in which both sides measured the case."""
    out = []
    for round_index in sorted(set(a) & set(b)):
        sa = _speed([r for r in a[round_index] if r.case_id == case_id], field_name)
        sb = _speed([r for r in b[round_index] if r.case_id == case_id], field_name)
        if sa and sb:
            out.append(sb / sa)
    return out


def accuracy_diff(a: list[Record], b: list[Record], alpha: float) -> AccuracyDiff:
    """A vs B on the same seeds, example by example (the first ok record of each seed a side)."""
    def by_seed(records: list[Record]) -> dict[int, Record]:
        out: dict[int, Record] = {}
        for r in records:
            if r.ok and r.per_example is not None:
                out.setdefault(r.seed, r)
        return out

    sa, sb = by_seed(a), by_seed(b)
    seeds = sorted(set(sa) & set(sb))
    pairs = [(sa[s].per_example.bools(), sb[s].per_example.bools()) for s in seeds  # type: ignore[union-attr]
             if sa[s].per_example.test_digest == sb[s].per_example.test_digest]  # type: ignore[union-attr]
    mean = lambda rs: statistics.fmean(r.top1 for r in rs) if rs else None  # noqa: E731
    diff = AccuracyDiff(mean([sa[s] for s in seeds]), mean([sb[s] for s in seeds]))
    if pairs:
        test = mcnemar(pairs, alpha)
        diff.losses, diff.gains, diff.p_value = test.losses or 0, test.gains or 0, test.p_value
    return diff


def decide_accuracy(diff: AccuracyDiff, p_adjusted: Optional[float], alpha: float) -> AccuracyDiff:
    diff.p_adjusted = p_adjusted
    if p_adjusted is None:
        diff.status = Status.SKIPPED
    elif p_adjusted < alpha and diff.losses > diff.gains:
        diff.status = Status.REGRESSED
    elif diff.losses > diff.gains:
        diff.status = Status.NOISE
    else:
        diff.status = Status.IMPROVED if p_adjusted < alpha and diff.gains > diff.losses else Status.PASS
    return diff


def _reason(speeds: list[Ratio], acc: AccuracyDiff, tolerance: float) -> str:
    parts = []
    for s in speeds:
        if s.ratio is None:
            continue
        ci = f" [{s.low:.3f}, {s.high:.3f}]" if s.low is not None else " (one round: no interval)"
        holm_p = f" (Holm p={s.p_adjusted:.3g})" if s.p_adjusted is not None else ""
        parts.append(f"{s.metric.split('_')[0]} B/A {s.ratio:.3f}{ci}{holm_p}")
    if acc.p_value is not None:
        parts.append(f"accuracy lost {acc.losses}, gained {acc.gains} examples (Holm p={acc.p_adjusted:.3g})")
    return "; ".join(parts) + f"; tolerance {100 * tolerance:.0f}%"


def compare_ab(a: dict[int, list[Record]], b: dict[int, list[Record]], tolerance: float = 0.05,
               confidence: float = 0.95, alpha: float = 0.05) -> list[AbCase]:
    """One AbCase per case either side ran, in the order A ran them."""
    everything = [r for rs in (*a.values(), *b.values()) for r in rs]
    case_ids = list(dict.fromkeys(r.case_id for r in everything))
    first = lambda side: side[min(side)] if side else []  # noqa: E731  # seeds are fixed: one round suffices
    diffs = {c: accuracy_diff([r for r in first(a) if r.case_id == c], [r for r in first(b) if r.case_id == c], alpha)
             for c in case_ids}
    tested = [c for c in case_ids if diffs[c].p_value is not None]
    adjusted = dict(zip(tested, holm([diffs[c].p_value for c in tested])))  # type: ignore[misc]
    speeds_of = {c: [measure_ratio(metric, paired_ratios(a, b, c, name), confidence) for metric, name in SPEEDS.items()]
                 for c in case_ids}
    judge_speeds([r for rs in speeds_of.values() for r in rs], tolerance, alpha)
    out = []
    for case_id in case_ids:
        speeds = speeds_of[case_id]
        acc = decide_accuracy(diffs[case_id], adjusted.get(case_id), alpha)
        failed = [f"{r.run_id} seed {r.seed}: {r.error_message}" for r in everything if r.case_id == case_id and not r.ok]
        statuses = {s.status for s in speeds} | {acc.status}
        status = next((s for s in (Status.REGRESSED, Status.NOISE, Status.IMPROVED, Status.PASS) if s in statuses),
                      Status.SKIPPED)
        if failed:
            status = Status.FAILED
        out.append(AbCase(case_id, status, "; ".join(failed) or _reason(speeds, acc, tolerance), speeds, acc, failed))
    return out


def versions(records: list[Record]) -> dict[str, Optional[str]]:
    """The library versions a side ran with (from its first record)."""
    env = records[0].env if records else None
    return {k: env.get(k) if env else None for k in VERSION_KEYS}

"""`rank` output: per dataset, candidates with every score (its rank among candidates) and the
fine-tuned accuracy, then each score's agreement with it; as a rich table, Markdown, CSV or JSON."""
from __future__ import annotations

import json
import math
from typing import Any, Optional

import pandas as pd
from rich.table import Table

from ..selection.agreement import Agreement, agreement
from ..selection.rank import SCORE_NAMES, Candidate, as_matrix, finite
from .escape import terminal_text

HEADERS = {"logme": "LogME", "leep": "LEEP", "nce": "NCE", "h_score": "H-score", "gbc": "GBC", "knn": "kNN acc",
           "linear_probe": "probe acc"}


def long_frame(candidates: list[Candidate], truth: dict[str, dict[str, float]]) -> pd.DataFrame:
    """One row per (dataset, backbone, score): value, rank among candidates, seconds, why skipped."""
    matrix = as_matrix(candidates)
    rows = []
    for c in candidates:
        for name, score in c.scores.items():
            values = finite(matrix[c.dataset][name])
            rank = 1 + sum(v > score.value for v in values.values()) if score.value in values.values() else None
            rows.append({"dataset": c.dataset, "backbone": c.backbone, "score": name, "value": score.value,
                         "rank": rank, "seconds": round(score.seconds, 4), "skipped": score.skipped,
                         "fine_tuned_top1": truth.get(c.dataset, {}).get(c.backbone)})
    return pd.DataFrame(rows)


def agreements(candidates: list[Candidate], truth: dict[str, dict[str, float]]) -> dict[str, dict[str, Optional[Agreement]]]:
    matrix = as_matrix(candidates)
    return {dataset: {name: agreement(finite(by_score.get(name, {})), truth.get(dataset, {})) for name in SCORE_NAMES}
            for dataset, by_score in matrix.items()}


def _cell(value: Optional[float], rank: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.4g} ({int(rank)})" if pd.notna(rank) else f"{value:.4g}"


def _agreement_rows(found: dict[str, Optional[Agreement]]) -> list[list[str]]:
    def row(label: str, fmt: Any) -> list[str]:
        return [label, ""] + [fmt(found.get(name)) if found.get(name) else "–" for name in SCORE_NAMES]

    return [row("weighted τ [90% CI]", lambda a: f"{a.tau:.2f} [{a.tau_low:.2f}, {a.tau_high:.2f}]"),
            row("Pearson r", lambda a: f"{a.pearson:.2f}"),
            row("regret of the top pick", lambda a: "0 (best)" if a.top1_matches else f"−{a.regret_pp:.1f} pp")]


def dataset_rows(frame: pd.DataFrame, dataset: str) -> tuple[list[str], list[list[str]], list[str]]:
    """Header, one row per candidate (best fine-tuned first, else best LogME), and the seconds row."""
    part = frame[frame.dataset == dataset]
    header = ["candidate", "fine-tuned top-1"] + [HEADERS[n] for n in SCORE_NAMES]
    backbones = list(dict.fromkeys(part.backbone))
    truth = {b: part[part.backbone == b].fine_tuned_top1.iloc[0] for b in backbones}
    logme = {b: part[(part.backbone == b) & (part.score == "logme")].value.iloc[0] for b in backbones}
    backbones.sort(key=lambda b: (-(truth[b] if pd.notna(truth[b]) else -1), -(logme[b] or -math.inf)))
    rows = []
    for b in backbones:
        cells = {r.score: _cell(r.value, r.rank) for r in part[part.backbone == b].itertuples()}
        top1 = f"{truth[b]:.4f}" if pd.notna(truth[b]) else "–"
        rows.append([b, top1] + [cells.get(n, "–") for n in SCORE_NAMES])
    seconds = ["wall time (all candidates)", ""] + [
        f"{part[part.score == n].seconds.sum():.2f}s" if part[part.score == n].value.notna().any() else "–"
        for n in SCORE_NAMES]
    return header, rows, seconds


def rich_tables(candidates: list[Candidate], truth: dict[str, dict[str, float]]) -> list[Table]:
    frame, found = long_frame(candidates, truth), agreements(candidates, truth)
    tables = []
    for dataset in dict.fromkeys(frame.dataset):
        header, rows, seconds = dataset_rows(frame, dataset)
        table = Table(title=f"{dataset}: candidates ranked by each score (rank in brackets)", title_justify="left")
        for name in header:
            table.add_column(name, justify="left" if name == "candidate" else "right", no_wrap=name == "candidate")
        for row in rows:
            table.add_row(*map(terminal_text, row))
        table.add_section()
        for row in _agreement_rows(found[dataset]) if truth.get(dataset) else []:
            table.add_row(*row)
        table.add_row(*seconds, style="dim")
        tables.append(table)
    return tables


def markdown(candidates: list[Candidate], truth: dict[str, dict[str, float]]) -> str:
    frame, found = long_frame(candidates, truth), agreements(candidates, truth)
    parts = []
    for dataset in dict.fromkeys(frame.dataset):
        header, rows, seconds = dataset_rows(frame, dataset)
        extra = _agreement_rows(found[dataset]) if truth.get(dataset) else []
        lines = [f"### {dataset}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(row) + " |" for row in rows + extra + [seconds]]
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


def as_json(candidates: list[Candidate], truth: dict[str, dict[str, float]]) -> str:
    frame, found = long_frame(candidates, truth), agreements(candidates, truth)
    agree = {d: {n: (vars(a) if a else None) for n, a in by.items()} for d, by in found.items()}
    return json.dumps({"scores": json.loads(frame.to_json(orient="records")), "agreement": agree}, indent=2,
                      default=float)

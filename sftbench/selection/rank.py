"""`rank`: every score for every candidate backbone of every dataset of a suite, each timed.

A candidate is one backbone of the matrix on one dataset, at the suite's first seed, with the
preprocessing of its probe case where the suite has one (so the runner's cached features serve).
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import torch
from torch import nn

from ..engine.probe import head_accuracy, lbfgs_solve
from ..suite.cases import Case
from . import scores
from .features import CandidateFeatures, candidate_features

SCORE_NAMES = ("logme", "leep", "nce", "h_score", "gbc", "knn", "linear_probe")
PROBE_L2, PROBE_ITERATIONS = 1e-4, 200


@dataclass
class Score:
    value: Optional[float]
    seconds: float = 0.0
    skipped: str = ""


@dataclass
class Candidate:
    backbone: str  # its label in the suite
    dataset: str
    scores: dict[str, Score] = field(default_factory=dict)
    feature_seconds: float = 0.0  # forward passes this run needed (0 when the cache held them)
    computed: int = 0


def candidate_cases(cases: list[Case], datasets: Optional[list[str]] = None) -> list[Case]:
    """One case per (backbone, dataset): a probe's where there is one, else the first; first seed."""
    chosen: dict[tuple[str, str], Case] = {}
    for case in sorted(cases, key=lambda c: (c.seed, "probe" not in c.strategy.name)):
        key = (case.backbone.label, case.dataset.label)
        if (datasets is None or case.dataset.label in datasets or case.dataset.name in datasets) and key not in chosen:
            chosen[key] = case
    return list(chosen.values())


def rank_cases(cases: list[Case], device: torch.device, data_root: Optional[str] = None,
               on_candidate: Callable[[Candidate], None] = lambda c: None) -> list[Candidate]:
    out = []
    for case in cases:
        feats = candidate_features(case, device, data_root)
        candidate = Candidate(case.backbone.label, case.dataset.label, score_all(feats), feats.seconds, feats.computed)
        on_candidate(candidate)
        out.append(candidate)
    return out


def score_all(f: CandidateFeatures) -> dict[str, Score]:
    no_val = "" if len(f.val_labels) else "no validation split (set val_fraction or val_size)"
    jobs: dict[str, tuple[str, Callable[[], float]]] = {
        "logme": ("", lambda: scores.logme(f.train, f.train_labels)),
        "leep": (f.source_skip, lambda: scores.leep(f.source_probs, f.train_labels)),
        "nce": (f.source_skip, lambda: scores.nce(f.source_probs, f.train_labels)),
        "h_score": ("", lambda: scores.h_score(f.train, f.train_labels)),
        "gbc": ("", lambda: scores.gbc(f.train, f.train_labels)),
        "knn": (no_val, lambda: scores.knn_accuracy(f.train, f.train_labels, f.val, f.val_labels)),
        "linear_probe": (no_val, lambda: probe_accuracy(f)),
    }
    return {name: _timed(skip, compute) for name, (skip, compute) in jobs.items()}


def _timed(skip: str, compute: Callable[[], float]) -> Score:
    if skip:
        return Score(None, skipped=skip)
    start = time.perf_counter()
    value = compute()
    return Score(value, time.perf_counter() - start)


def probe_accuracy(f: CandidateFeatures) -> float:
    """The runner's L-BFGS probe (multinomial logistic regression) on the features; validation accuracy."""
    torch.manual_seed(0)
    x, y = torch.from_numpy(f.train).float(), torch.from_numpy(f.train_labels)
    head = nn.Linear(x.shape[1], int(max(y.max(), f.val_labels.max())) + 1)
    optimizer = torch.optim.LBFGS(head.parameters(), max_iter=PROBE_ITERATIONS, line_search_fn="strong_wolfe")
    lbfgs_solve(head, optimizer, x, y, PROBE_L2)
    return float(head_accuracy(head, torch.from_numpy(f.val).float(), torch.from_numpy(f.val_labels)) or 0.0)


def as_matrix(candidates: list[Candidate]) -> dict[str, dict[str, dict[str, Optional[float]]]]:
    """dataset -> score -> backbone -> value."""
    table: dict[str, dict[str, dict[str, Optional[float]]]] = {}
    for c in candidates:
        for name, score in c.scores.items():
            table.setdefault(c.dataset, {}).setdefault(name, {})[c.backbone] = score.value
    return table


def finite(values: dict[str, Optional[float]]) -> dict[str, float]:
    return {k: v for k, v in values.items() if v is not None and np.isfinite(v)}

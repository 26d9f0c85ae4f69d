"""Frozen features of one candidate on one dataset, through the runner's feature cache.

The backbone is built, seeded and preprocessed exactly as the runner builds a probe case, so the
cache key matches: a candidate whose probe (or an earlier `rank`) already ran costs no forward
pass. LEEP and NCE also need the source head: the pretrained classifier applied to the same
pooled features, so no second forward pass either.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch
from timm.models import get_pretrained_cfg_value

from ..backbones.factory import build_backbone
from ..backbones.names import TORCHVISION_PREFIX
from ..data.pipeline import BatchPipeline
from ..data.splits import load_raw, make_splits
from ..engine.device import prepare_case, seed_everything
from ..engine.extraction import case_feature_cache, case_preprocessing
from ..suite.cases import Case


@dataclass
class CandidateFeatures:
    train: np.ndarray  # (N, D) float64
    train_labels: np.ndarray
    val: np.ndarray
    val_labels: np.ndarray
    source_probs: Optional[np.ndarray]  # (N, Z) softmax of the pretrained head; None without one
    source_skip: str  # why there is no source head
    computed: int  # images that needed a forward pass (0: all from the cache)
    seconds: float  # of those forward passes


def candidate_features(case: Case, device: torch.device, data_root: Optional[str] = None) -> CandidateFeatures:
    cfg = case.train
    prepare_case(device, cfg.deterministic, cfg.tf32)
    seed_everything(case.seed)  # the runner's order: a random init gets the runner's weights
    raw = load_raw(case.dataset, data_root)
    splits = make_splits(raw, case.dataset, case.seed)
    backbone = build_backbone(case.backbone, splits.num_classes)
    backbone.model.to(device)
    cache = case_feature_cache(case, backbone, BatchPipeline(case_preprocessing(case, backbone), device), device)
    index = splits.index or {}
    train = cache.features(raw.train, raw.digests["train"], index["train"]).double().cpu().numpy()
    val = cache.features(raw.train, raw.digests["train"], index["val"]).double().cpu().numpy()
    probs, skip = _source_probs(case, train)
    return CandidateFeatures(train, splits.train.labels.numpy(), val, splits.val.labels.numpy(), probs, skip,
                             cache.stats.computed, cache.stats.seconds)


def _source_probs(case: Case, features: np.ndarray) -> tuple[Optional[np.ndarray], str]:
    if case.backbone.weights != "pretrained":
        return None, "no pretrained classifier (random or file weights)"
    if case.backbone.stage:
        return None, f"cut at stage {case.backbone.stage}: the pretrained classifier does not fit"
    if case.backbone.name.startswith(TORCHVISION_PREFIX):
        return None, "source heads of torchvision models are not read yet"
    classes = int(get_pretrained_cfg_value(case.backbone.name, "num_classes") or 0)
    if classes <= 0:
        return None, "the pretrained weights name no source classes"
    head = build_backbone(case.backbone, classes)
    classifier = head.model.get_submodule(head.head_module)
    with torch.inference_mode():
        logits = classifier(torch.from_numpy(features).float())
    return torch.softmax(logits.double(), dim=1).numpy(), ""

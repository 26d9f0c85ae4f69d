"""Depth structure of a backbone: stages (timm's coarse group_matcher) and layer-decay groups.

timm models describe their own depth through `group_matcher`; torchvision models fall back to
their top-level children in definition order. The classifier head is never part of a stage.
"""
from __future__ import annotations

import functools

import torch
from timm.models import group_parameters
from timm.optim import param_groups_layer_decay
from torch import nn

from ..schema import BackboneSpec
from .factory import Backbone, build_backbone


def depth_stages(backbone: Backbone) -> list[tuple[str, ...]]:
    """Parameter names per stage, shallow to deep, head excluded; post-stage norms join the last."""
    model = backbone.model
    if hasattr(model, "group_matcher"):
        grouped = group_parameters(model, model.group_matcher(coarse=True))
        stages = [tuple(n for n in names if n not in backbone.head_names) for names in grouped.values()]
    else:
        stages = [tuple(f"{child}.{n}" for n, _ in module.named_parameters())
                  for child, module in model.named_children()]
        stages = [tuple(n for n in s if n not in backbone.head_names) for s in stages]
    return [s for s in stages if s]


def count_stages(spec: BackboneSpec) -> int:
    """The number of stages `depth_stages` finds, from the architecture alone: built on the meta
    device without weights, so a suite can expand `last_k` sweeps and check k before anything trains."""
    return _count_stages(spec.model_copy(update={"weights": "random"}).model_dump_json())


@functools.lru_cache(maxsize=64)
def _count_stages(spec_json: str) -> int:
    with torch.device("meta"):
        backbone = build_backbone(BackboneSpec.model_validate_json(spec_json), num_classes=2)
    return len(depth_stages(backbone))


def layer_decay_groups(backbone: Backbone, decay: float) -> list[tuple[str, tuple[str, ...], float]]:
    """(group name, parameter names, lr scale): the head at scale 1, each layer below x decay.

    timm models use timm's own `param_groups_layer_decay` (per block, as in BEiT/MAE fine-tuning);
    others decay per top-level stage.
    """
    model = backbone.model
    if hasattr(model, "group_matcher"):
        return _timm_layer_decay(model, decay)
    stages = depth_stages(backbone)
    head = tuple(n for n, _ in model.named_parameters() if n in backbone.head_names)
    n = len(stages)
    groups = [(f"layer_{i}", names, decay ** (n - i)) for i, names in enumerate(stages)]
    return groups + [("head", head, 1.0)]


def _timm_layer_decay(model: nn.Module, decay: float) -> list[tuple[str, tuple[str, ...], float]]:
    name_of = {id(p): n for n, p in model.named_parameters()}
    merged: dict[float, list[str]] = {}
    for group in param_groups_layer_decay(model, weight_decay=0.0, layer_decay=decay):
        merged.setdefault(group["lr_scale"], []).extend(name_of[id(p)] for p in group["params"])
    ordered = sorted(merged.items())  # smallest scale = deepest from the head = shallowest layer
    return [(f"layer_{i}", tuple(names), scale) for i, (scale, names) in enumerate(ordered)]

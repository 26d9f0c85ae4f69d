"""Freezing strategies: which parameters train, at what learning-rate scale, with which BN policy.

A strategy is a class with a pydantic `Params` model and `plan(backbone, epoch, epochs)`; the
runner asks for the plan at every epoch and rebuilds the optimizer when it changes, so
multi-phase strategies (LP-FT, gradual unfreezing) need nothing from the runner. Users add their
own through the `sftbench.strategies` entry-point group or a `module:Class` name in a suite.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field

from ..backbones.factory import Backbone
from ..registry import Registry

BnPolicy = Literal["train", "eval", "frozen"]
ENTRY_POINT_GROUP = "sftbench.strategies"


@dataclass(frozen=True)
class ParamGroup:
    name: str
    params: tuple[str, ...]  # parameter names
    lr_scale: float = 1.0


@dataclass(frozen=True)
class TrainPlan:
    """What trains from a given epoch on. BN layers whose parameters are all frozen, and every
    frozen sub-module, always run in eval mode; `bn` decides the rest (see `train.apply_plan`)."""

    groups: tuple[ParamGroup, ...]
    bn: BnPolicy
    phase: str = "train"
    schedule_epochs: Optional[tuple[int, int]] = None  # LR schedule span [start, end); None: whole run
    probe: bool = False  # only the head trains on a backbone in eval mode: its features can be cached
    lbfgs: Optional["LbfgsProbe"] = None  # fit the head by full-batch L-BFGS instead of the optimizer

    @property
    def trainable(self) -> frozenset[str]:
        return frozenset(n for g in self.groups for n in g.params)


@dataclass(frozen=True)
class LbfgsProbe:
    """Multinomial logistic regression on frozen features (Kornblith et al. 2019, CLIP, DINOv2)."""

    l2: float
    max_iter: int


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    bn: Optional[BnPolicy] = Field(None, description="train | eval | frozen (FrozenBatchNorm2d); None: the default")


class Strategy:
    Params: ClassVar[type[Params]] = Params
    default_bn: ClassVar[BnPolicy] = "train"

    def __init__(self, params: Params):
        self.params = params

    @property
    def bn(self) -> BnPolicy:
        return self.params.bn or self.default_bn

    def check_data(self, augment: str) -> None:
        """Raise ConfigError when the strategy cannot train on data with this augmentation."""

    def check(self, backbone: Backbone) -> None:
        """Raise ConfigError when the parameters cannot apply to this backbone (e.g. k too large)."""

    def plan(self, backbone: Backbone, epoch: int, epochs: int) -> TrainPlan:
        raise NotImplementedError


STRATEGIES: Registry[type[Strategy]] = Registry("strategy", "sftbench list strategies")

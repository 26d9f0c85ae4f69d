"""Freezing strategies: which parameters train, at what learning-rate scale, with which BN policy.

A strategy is a class with a pydantic `Params` model and `plan(backbone, epoch, epochs)`; the
runner asks for the plan at every epoch and rebuilds the optimizer when it changes, so
multi-phase strategies (LP-FT, gradual unfreezing) need nothing from the runner. Users add their
own through the `sftbench.strategies` entry-point group or a `module:Class` name in a suite.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from importlib import metadata
from typing import Any, ClassVar, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, ValidationError

from .backbones import Backbone
from .errors import ConfigError, did_you_mean
from .registry import Registry
from .stages import depth_stages, layer_decay_groups

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

    def check(self, backbone: Backbone) -> None:
        """Raise ConfigError when the parameters cannot apply to this backbone (e.g. k too large)."""

    def plan(self, backbone: Backbone, epoch: int, epochs: int) -> TrainPlan:
        raise NotImplementedError


STRATEGIES: Registry[type[Strategy]] = Registry("strategy", "sftbench list strategies")


def _names(backbone: Backbone) -> tuple[str, ...]:
    return tuple(n for n, _ in backbone.model.named_parameters())


def _head(backbone: Backbone) -> tuple[str, ...]:
    return tuple(n for n in _names(backbone) if n in backbone.head_names)


def _head_plus(backbone: Backbone, name: str, chosen: list[str], bn: BnPolicy, phase: str = "train") -> TrainPlan:
    body = tuple(n for n in chosen if n not in backbone.head_names)
    groups = (ParamGroup(name, body),) if body else ()
    return TrainPlan(groups + (ParamGroup("head", _head(backbone)),), bn=bn, phase=phase)


@STRATEGIES.register("full", "every parameter trains")
class Full(Strategy):
    def plan(self, backbone: Backbone, epoch: int, epochs: int) -> TrainPlan:
        return TrainPlan((ParamGroup("all", _names(backbone)),), bn=self.bn)


class LinearProbeParams(Params):
    probe: Literal["sgd", "lbfgs"] = Field("sgd", description="sgd: the suite's optimizer; lbfgs: logistic regression")
    l2: float = Field(1e-4, ge=0, description="lbfgs: L2 penalty on the head's weights")
    max_iter: PositiveInt = Field(200, description="lbfgs: iterations")


@STRATEGIES.register("linear_probe", "backbone frozen (eval mode, BN statistics untouched); only the new head trains")
class LinearProbe(Strategy):
    Params = LinearProbeParams
    default_bn: ClassVar[BnPolicy] = "eval"

    def plan(self, backbone: Backbone, epoch: int, epochs: int) -> TrainPlan:
        p = self.params
        lbfgs = LbfgsProbe(p.l2, p.max_iter) if p.probe == "lbfgs" else None
        return TrainPlan((ParamGroup("head", _head(backbone)),), bn=self.bn, phase="probe", probe=True, lbfgs=lbfgs)


class LastKParams(Params):
    k: PositiveInt = Field(1, description="number of last stages (timm group_matcher) that train with the head")


def _check_k(k: int, backbone: Backbone, what: str) -> None:
    n = len(depth_stages(backbone))
    if k > n:
        raise ConfigError(f"{what}: k={k} exceeds the {n} stages of this backbone; use 1 <= k <= {n}")


@STRATEGIES.register("last_k", "the last k stages/blocks (from timm's group_matcher) plus the head train")
class LastK(Strategy):
    Params = LastKParams

    def check(self, backbone: Backbone) -> None:
        _check_k(self.params.k, backbone, "last_k")

    def plan(self, backbone: Backbone, epoch: int, epochs: int) -> TrainPlan:
        stages = depth_stages(backbone)[-self.params.k:]
        return _head_plus(backbone, f"last_{self.params.k}", [n for s in stages for n in s], self.bn)


# Measured defaults (benchmarks/strategies.yaml, Lite0 on mnist5k): bitfit 0.597 with bn: eval vs
# 0.418 with bn: train (the biases are fitted to batch statistics that TF-ported BN, momentum 0.01,
# has not caught up with); norm_only 0.491 with bn: train vs 0.297 with eval (the affine parameters
# alone cannot undo the ImageNet statistics).
@STRATEGIES.register("bitfit", "only biases (and the head) train (Ben Zaken et al. 2022); BN statistics fixed")
class BitFit(Strategy):
    default_bn: ClassVar[BnPolicy] = "eval"
    def plan(self, backbone: Backbone, epoch: int, epochs: int) -> TrainPlan:
        return _head_plus(backbone, "biases", [n for n in _names(backbone) if n.endswith(".bias")], self.bn)


@STRATEGIES.register("norm_only", "only normalisation layers' affine parameters (and the head) train")
class NormOnly(Strategy):
    def check(self, backbone: Backbone) -> None:
        if self.bn == "frozen" and not _norm_param_names(backbone):
            raise ConfigError("norm_only with bn: frozen leaves no normalisation parameter to train; use bn: train or eval")

    def plan(self, backbone: Backbone, epoch: int, epochs: int) -> TrainPlan:
        return _head_plus(backbone, "norms", _norm_param_names(backbone), self.bn)


def _norm_param_names(backbone: Backbone) -> list[str]:
    from torch import nn

    norm_types = (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm, nn.modules.instancenorm._InstanceNorm)
    names = []
    for module_name, module in backbone.model.named_modules():
        if isinstance(module, norm_types) or type(module).__name__.endswith(("Norm2d", "LayerNorm", "RmsNorm")):
            names += [f"{module_name}.{p}" if module_name else p for p, _ in module.named_parameters(recurse=False)]
    return names


class LpFtParams(Params):
    lp_epochs: PositiveInt = Field(1, description="epochs of linear probing before the full fine-tune")
    lp_lr_scale: float = Field(1.0, gt=0, description="learning-rate multiplier during the probe phase")


@STRATEGIES.register("lp_ft", "linear probe for lp_epochs, then full fine-tune from that head (Kumar et al. 2022)")
class LpFt(Strategy):
    Params = LpFtParams

    def plan(self, backbone: Backbone, epoch: int, epochs: int) -> TrainPlan:
        p = self.params
        if epoch < p.lp_epochs:
            return TrainPlan((ParamGroup("head", _head(backbone), p.lp_lr_scale),), bn="eval", phase="probe",
                             schedule_epochs=(0, p.lp_epochs), probe=True)
        return TrainPlan((ParamGroup("all", _names(backbone)),), bn=self.bn, phase="fine_tune",
                         schedule_epochs=(p.lp_epochs, epochs))
        # lp_epochs >= epochs is allowed: the case is then a pure linear probe, as its plans record


class LlrdParams(Params):
    decay: float = Field(0.75, gt=0, le=1, description="LR multiplier per layer of depth below the head")


@STRATEGIES.register("llrd", "everything trains; LR decays geometrically with depth (timm param_groups_layer_decay)")
class Llrd(Strategy):
    Params = LlrdParams

    def plan(self, backbone: Backbone, epoch: int, epochs: int) -> TrainPlan:
        groups = tuple(ParamGroup(name, names, scale) for name, names, scale in
                       layer_decay_groups(backbone, self.params.decay))
        return TrainPlan(groups, bn=self.bn)


class GradualParams(Params):
    every: PositiveInt = Field(1, description="epochs between unfreezing one more stage from the top")


@STRATEGIES.register("gradual_unfreeze", "head first, then one more stage from the top every `every` epochs (ULMFiT)")
class GradualUnfreeze(Strategy):
    Params = GradualParams

    def plan(self, backbone: Backbone, epoch: int, epochs: int) -> TrainPlan:
        stages = depth_stages(backbone)
        n = min(len(stages), epoch // self.params.every)
        chosen = [name for stage in stages[len(stages) - n:] for name in stage] if n else []
        return _head_plus(backbone, f"top_{n}_stages", chosen, self.bn, phase=f"unfrozen_{n}")


# --- lookup: registry, entry points, module:Class -----------------------------------------------


def _load_entry_points() -> None:
    for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if entry.name not in STRATEGIES:
            try:
                STRATEGIES.register(entry.name, f"plugin ({entry.value})")(entry.load())
            except Exception:  # a broken plugin must not break sftbench; naming it reports the error
                continue


def resolve(name: str) -> type[Strategy]:
    """A registered name, an entry-point plugin, or `package.module:Class`."""
    if ":" in name:
        module_name, _, attr = name.partition(":")
        try:
            cls = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as err:
            raise ConfigError(f"strategy {name!r} could not be imported ({type(err).__name__}: {err}); "
                              "check the `module:Class` path and that the module is importable") from None
        if not (isinstance(cls, type) and issubclass(cls, Strategy)):
            raise ConfigError(f"strategy {name!r} is not a subclass of sftbench.strategies.Strategy; derive from it")
        return cls
    if name not in STRATEGIES:
        _load_entry_points()
    return STRATEGIES.get(name).factory


def validate_params(name: str, params: dict[str, Any]) -> Params:
    cls = resolve(name)
    try:
        return cls.Params.model_validate(params)
    except ValidationError as err:
        allowed = sorted(cls.Params.model_fields)
        problems = "; ".join(
            f"params.{'.'.join(map(str, e['loc']))}: "
            + (f"unknown parameter{did_you_mean(str(e['loc'][-1]), allowed)} (allowed: {', '.join(allowed)})"
               if e["type"] == "extra_forbidden" else f"{e.get('input')!r} is invalid: {e['msg'][0].lower()}{e['msg'][1:]}")
            for e in err.errors()
        )
        raise ConfigError(f"strategy {name!r}: {problems}") from None


def build_strategy(name: str, params: dict[str, Any]) -> Strategy:
    return resolve(name)(validate_params(name, params))

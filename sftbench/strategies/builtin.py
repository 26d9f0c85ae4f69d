"""The built-in freezing strategies, registered by name in `STRATEGIES`."""
from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, PositiveInt
from torch import nn

from ..backbones.factory import Backbone
from ..backbones.stages import depth_stages, layer_decay_groups
from ..errors import ConfigError
from .base import (
    STRATEGIES,
    BnPolicy,
    LbfgsProbe,
    ParamGroup,
    Params,
    Strategy,
    TrainPlan,
)


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

    def check_data(self, augment: str) -> None:
        if self.params.probe == "lbfgs" and augment != "none":
            raise ConfigError(f"probe: lbfgs fits the head once on fixed features, so augment: {augment} would "
                              "never be applied; use augment: none, or probe: sgd to train on augmented images")

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

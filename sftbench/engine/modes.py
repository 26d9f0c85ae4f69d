"""Put a model in the state a plan declares: requires_grad per tensor, train/eval mode per module."""
from __future__ import annotations

from timm.layers import freeze_batch_norm_2d
from torch import nn

from ..strategies.base import TrainPlan


def apply_plan(model: nn.Module, plan: TrainPlan) -> None:
    """requires_grad from the plan. Modes: a probe runs the whole backbone in eval mode (no dropout,
    fixed BN); otherwise a sub-module with no trainable parameter runs in eval mode (frozen stages
    never drift) and `bn: eval` puts every BatchNorm in eval mode."""
    trainable = plan.trainable
    for name, param in model.named_parameters():
        param.requires_grad_(name in trainable)
    model.eval() if plan.probe else model.train()
    for module in model.modules():
        own = list(module.parameters(recurse=False))
        params = list(module.parameters())
        if plan.probe:
            if own and all(p.requires_grad for p in own):
                module.train()
        elif params and not any(p.requires_grad for p in params):
            module.eval()
        elif plan.bn == "eval" and isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()


def freeze_batchnorm(model: nn.Module) -> nn.Module:
    """`bn: frozen`: every BatchNorm becomes timm's FrozenBatchNorm2d (affine and statistics fixed)."""
    return freeze_batch_norm_2d(model)

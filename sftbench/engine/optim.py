"""The optimizer a plan asks for (param groups, no decay on biases/norms), the LR schedule, the plan's summary."""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ..schema import OptimizerSpec, ScheduleSpec
from ..strategies.base import TrainPlan


def build_optimizer(model: nn.Module, plan: TrainPlan, spec: OptimizerSpec) -> torch.optim.Optimizer:
    """One torch group per (plan group, decay or not): no weight decay on biases and norm scales."""
    by_name = dict(model.named_parameters())
    groups: list[dict[str, Any]] = []
    for group in plan.groups:
        params = [by_name[n] for n in group.params]
        for suffix, members, wd in (
            ("", [p for p in params if p.ndim > 1], spec.weight_decay),
            ("/no_decay", [p for p in params if p.ndim <= 1], 0.0),
        ):
            if members:
                groups.append({"params": members, "name": group.name + suffix, "lr_scale": group.lr_scale,
                               "lr": spec.lr * group.lr_scale, "weight_decay": wd})
    # fused kernels on CUDA: one launch per step, and GradScaler.step needs no .item() sync (fp16)
    fused = {"fused": True} if params_device_type(model) == "cuda" else {}
    if spec.name == "sgd":
        return torch.optim.SGD(groups, lr=spec.lr, momentum=spec.momentum, nesterov=spec.nesterov, **fused)
    return torch.optim.AdamW(groups, lr=spec.lr, **fused)


def params_device_type(model: nn.Module) -> str:
    return next((p.device.type for p in model.parameters()), "cpu")


def lr_factor(step: int, total_steps: int, warmup_steps: int, schedule: ScheduleSpec) -> float:
    """`step` counts from the start of the schedule's span, which lasts `total_steps`."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule.name == "constant":
        return 1.0
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def set_lr(optimizer: torch.optim.Optimizer, base_lr: float, factor: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = base_lr * group["lr_scale"] * factor


def describe_plan(model: nn.Module, plan: TrainPlan, epoch: int, base_lr: float) -> dict[str, Any]:
    sizes = {n: p.numel() for n, p in model.named_parameters()}
    return {
        "phase": plan.phase,
        "from_epoch": epoch,
        "bn": plan.bn,
        "trainable_params": sum(sizes[n] for n in plan.trainable),
        "groups": [
            {"name": g.name, "tensors": len(g.params), "params": sum(sizes[n] for n in g.params), "lr": base_lr * g.lr_scale}
            for g in plan.groups
        ],
    }

"""One fit loop, evaluation and metrics. No I/O and no CLI: the runner owns those."""
from __future__ import annotations

import contextlib
import math
import os
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np
import torch
from torch import nn

from .backbones import Backbone
from .datasets import ImageSet
from .errors import TrainingDivergedError
from .preprocess import BatchPipeline
from .spec import OptimizerSpec, ScheduleSpec, TrainSpec
from .strategies import Strategy, TrainPlan
from .timing import Stopwatch
from .verify import FrozenSnapshot, check_optimizer

EpochCallback = Callable[[int, int, float], None]  # (epoch, epochs, train loss)


def seed_everything(seed: int, deterministic: bool) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # seeds every CUDA device too
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.backends.cudnn.benchmark = not deterministic
    torch.backends.cudnn.deterministic = deterministic
    torch.use_deterministic_algorithms(deterministic, warn_only=True)


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager[Any]:
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


# --- strategy plan -> model modes and optimizer -----------------------------------------------


def apply_plan(model: nn.Module, plan: TrainPlan) -> None:
    """requires_grad from the plan; modes: a sub-module with no trainable parameter runs in eval
    mode (frozen BN statistics, no dropout inside frozen blocks); `bn: eval` puts every BN in eval."""
    trainable = plan.trainable
    for name, param in model.named_parameters():
        param.requires_grad_(name in trainable)
    model.train()
    for module in model.modules():
        params = list(module.parameters())
        if params and not any(p.requires_grad for p in params):
            module.eval()
        elif plan.bn == "eval" and isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()


def freeze_batchnorm(model: nn.Module) -> nn.Module:
    """`bn: frozen`: every BatchNorm becomes timm's FrozenBatchNorm2d (affine and statistics fixed)."""
    from timm.layers import freeze_batch_norm_2d

    return freeze_batch_norm_2d(model)


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
    if spec.name == "sgd":
        return torch.optim.SGD(groups, lr=spec.lr, momentum=spec.momentum, nesterov=spec.nesterov)
    return torch.optim.AdamW(groups, lr=spec.lr)


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


# --- fit and evaluate -------------------------------------------------------------------------


@dataclass
class FitResult:
    final_train_loss: float
    train_samples_per_s: Optional[float]
    timed_train_samples: int
    timed_train_seconds: float
    steps: int
    history: list[dict[str, Any]] = field(default_factory=list)
    plans: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class EvalResult:
    predictions: torch.Tensor
    labels: torch.Tensor
    samples_per_s: Optional[float]


def _train_batches(pipeline: BatchPipeline, data: ImageSet, cfg: TrainSpec, g: torch.Generator) -> Iterator[Any]:
    return pipeline.batches(data, cfg.batch_size, shuffle=True, generator=g, augment=True,
                            drop_last=True, max_steps=cfg.max_steps_per_epoch)


def fit(
    backbone: Backbone, strategy: Strategy, train: ImageSet, val: ImageSet, pipeline: BatchPipeline,
    cfg: TrainSpec, seed: int, on_epoch: Optional[EpochCallback] = None, strategy_name: str = "strategy",
) -> FitResult:
    model, device = backbone.model, pipeline.device
    g = torch.Generator(device=device if device.type == "cuda" else "cpu").manual_seed(seed)
    steps_per_epoch = max(1, len(train) // cfg.batch_size)
    if cfg.max_steps_per_epoch:
        steps_per_epoch = min(steps_per_epoch, cfg.max_steps_per_epoch)
    scaler = torch.amp.GradScaler(device.type, enabled=cfg.precision == "fp16" and device.type == "cuda")
    loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    clock = Stopwatch(device)
    result = FitResult(math.nan, None, 0, 0.0, 0)
    plan: Optional[TrainPlan] = None
    snapshot: Optional[FrozenSnapshot] = None
    step = 0
    for epoch in range(cfg.epochs):
        new_plan = strategy.plan(backbone, epoch, cfg.epochs)
        if new_plan != plan:
            if snapshot is not None:
                snapshot.verify(model, strategy_name)
            plan = new_plan
            apply_plan(model, plan)
            optimizer = build_optimizer(model, plan, cfg.optimizer)
            check_optimizer(model, optimizer, plan, strategy_name)
            snapshot = FrozenSnapshot(model, plan)
            start, end = plan.schedule_epochs or (0, cfg.epochs)
            span = (start * steps_per_epoch, max(1, (end - start) * steps_per_epoch))
            warmup_steps = round(cfg.schedule.warmup_epochs * steps_per_epoch)
            timed_from = step + cfg.timing_warmup_steps  # compile/allocator warm-up after each change
            result.plans.append(describe_plan(model, plan, epoch, cfg.optimizer.lr))
        loss_sum = torch.zeros((), device=device)
        seen = window = 0
        factor = math.nan
        for x, y in _train_batches(pipeline, train, cfg, g):
            if not clock.running and step >= timed_from:
                clock.start()
            factor = lr_factor(step - span[0], span[1], warmup_steps, cfg.schedule)
            set_lr(optimizer, cfg.optimizer.lr, factor)
            with autocast(device, cfg.precision):
                loss = loss_fn(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if cfg.grad_clip_norm:
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip_norm)
            scaler.step(optimizer)
            scaler.update()
            loss_sum += loss.detach() * len(y)  # stays on the device: no sync per step
            seen += len(y)
            window += len(y) if clock.running else 0
            step += 1
        clock.stop(window)
        epoch_loss = (loss_sum / max(seen, 1)).item()
        if not math.isfinite(epoch_loss):
            raise TrainingDivergedError(
                f"training loss became {epoch_loss} in epoch {epoch + 1}; lower the learning rate or use fp32"
            )
        val_acc = accuracy(evaluate(model, val, pipeline, cfg)) if len(val) else None
        result.history.append({"epoch": epoch + 1, "train_loss": epoch_loss, "val_top1": val_acc,
                               "phase": plan.phase if plan else None, "lr_factor": round(factor, 6)})
        result.final_train_loss = epoch_loss
        if plan is not None:
            apply_plan(model, plan)  # evaluate() left the model in eval mode
        if on_epoch:
            on_epoch(epoch + 1, cfg.epochs, epoch_loss)
    if snapshot is not None:
        snapshot.verify(model, strategy_name)
    result.steps = step
    result.timed_train_samples, result.timed_train_seconds = clock.samples, clock.seconds
    result.train_samples_per_s = clock.throughput
    return result


@torch.inference_mode()
def evaluate(model: nn.Module, data: ImageSet, pipeline: BatchPipeline, cfg: TrainSpec) -> EvalResult:
    """Predictions for a split; the first batch is warm-up and left out of the throughput
    (unless it is the only one)."""
    model.eval()
    clock = Stopwatch(pipeline.device)
    predictions = []
    batch_size = cfg.eval_batch_size or 2 * cfg.batch_size
    warmup = 1 if len(data) > batch_size else 0
    for i, (x, _) in enumerate(pipeline.batches(data, batch_size, shuffle=False)):
        if i == warmup:
            clock.start()
        with autocast(pipeline.device, cfg.precision):
            predictions.append(model(x).argmax(dim=1))
    clock.stop(len(data) - warmup * batch_size)
    preds = torch.cat(predictions) if predictions else torch.empty(0, dtype=torch.long)
    return EvalResult(preds.cpu(), data.labels.cpu(), clock.throughput)


def accuracy(result: EvalResult) -> float:
    return float((result.predictions == result.labels).float().mean()) if len(result.labels) else math.nan


def classification_metrics(result: EvalResult, num_classes: int) -> dict[str, Any]:
    """Top-1, macro-F1 (over classes present in labels or predictions) and per-class recall."""
    labels, preds = result.labels.long(), result.predictions.long()
    confusion = torch.bincount(labels * num_classes + preds, minlength=num_classes**2).view(num_classes, num_classes)
    confusion = confusion.double()
    tp, support, predicted = confusion.diag(), confusion.sum(1), confusion.sum(0)
    recall = torch.where(support > 0, tp / support.clamp(min=1), torch.zeros_like(tp))
    precision = torch.where(predicted > 0, tp / predicted.clamp(min=1), torch.zeros_like(tp))
    f1 = torch.where(precision + recall > 0, 2 * precision * recall / (precision + recall).clamp(min=1e-12), torch.zeros_like(tp))
    present = (support > 0) | (predicted > 0)
    return {
        "top1": float(tp.sum() / max(1, len(labels))),
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "per_class_recall": [round(float(r), 6) if s > 0 else None for r, s in zip(recall, support)],
    }

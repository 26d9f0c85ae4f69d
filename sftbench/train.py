"""One fit loop over the strategy's phases. No I/O and no CLI: the runner owns those.

A phase trains either on images (the model forward, augmentation on the device) or, for probe
phases with a feature source, on cached frozen-backbone features through the head alone.
"""
from __future__ import annotations

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
from .evaluation import accuracy, autocast, evaluate
from .plans import apply_plan, build_optimizer, describe_plan, lr_factor, set_lr
from .preprocess import BatchPipeline
from .spec import TrainSpec
from .strategies import Strategy, TrainPlan
from .timing import Stopwatch
from .verify import FrozenSnapshot, check_optimizer

EpochCallback = Callable[[int, int, float], None]  # (epoch, epochs, train loss)
FeatureSource = Callable[[str], tuple[torch.Tensor, torch.Tensor]]  # split -> (features, labels) on device


def seed_everything(seed: int, deterministic: bool) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # seeds every CUDA device too
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.backends.cudnn.benchmark = not deterministic
    torch.backends.cudnn.deterministic = deterministic
    torch.use_deterministic_algorithms(deterministic, warn_only=True)


@dataclass
class FitResult:
    final_train_loss: float = math.nan
    train_samples_per_s: Optional[float] = None
    timed_train_samples: int = 0
    timed_train_seconds: float = 0.0
    steps: int = 0
    train_path: str = "images"  # images | cached_features (of the last phase)
    history: list[dict[str, Any]] = field(default_factory=list)
    plans: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _Phase:
    """What one plan trains on: a batch iterator factory, the forward it feeds, val accuracy."""

    batches: Callable[[], Iterator[tuple[torch.Tensor, torch.Tensor]]]
    forward: Callable[[torch.Tensor], torch.Tensor]
    val_accuracy: Callable[[], Optional[float]]
    path: str


def _feature_batches(x: torch.Tensor, y: torch.Tensor, cfg: TrainSpec, g: torch.Generator) -> Iterator[Any]:
    """Same shuffling and drop-last as the image path, so both consume the generator alike."""
    n, bs = len(y), cfg.batch_size
    order = torch.randperm(n, generator=g, device=g.device).to(x.device)
    stop = n - n % bs if n >= bs else n
    for step, start in enumerate(range(0, stop, bs)):
        if cfg.max_steps_per_epoch is not None and step >= cfg.max_steps_per_epoch:
            return
        index = order[start:start + bs]
        yield x[index], y[index]


def _phase(plan: TrainPlan, backbone: Backbone, forward: Callable[[torch.Tensor], torch.Tensor],
           train: ImageSet, val: ImageSet, pipeline: BatchPipeline, cfg: TrainSpec, g: torch.Generator,
           features: Optional[FeatureSource]) -> _Phase:
    if plan.probe and features is not None and pipeline.prep.augment == "none":
        head = backbone.model.get_submodule(backbone.head_module)
        (xt, yt), (xv, yv) = features("train"), features("val")

        def val_acc() -> Optional[float]:
            if not len(yv):
                return None
            with torch.inference_mode():
                return float((head(xv).argmax(1) == yv).float().mean())

        return _Phase(lambda: _feature_batches(xt, yt, cfg, g), head, val_acc, "cached_features")

    def val_images() -> Optional[float]:
        return accuracy(evaluate(backbone.model, val, pipeline, cfg, forward)) if len(val) else None

    return _Phase(lambda: pipeline.batches(train, cfg.batch_size, shuffle=True, generator=g, augment=True,
                                           drop_last=True, max_steps=cfg.max_steps_per_epoch),
                  forward, val_images, "images")


def fit_lbfgs(head: nn.Module, x: torch.Tensor, y: torch.Tensor, l2: float, max_iter: int,
              label_smoothing: float = 0.0) -> float:
    """Full-batch multinomial logistic regression of the head on fixed features; returns the loss."""
    weights = [p for n, p in head.named_parameters() if n.endswith("weight")]
    optimizer = torch.optim.LBFGS(head.parameters(), lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe")
    loss_fn = nn.CrossEntropyLoss(label_smoothing=label_smoothing)

    def closure() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(head(x), y) + l2 * sum((w * w).sum() for w in weights)
        loss.backward()
        return loss

    optimizer.step(closure)
    with torch.no_grad():
        return float(loss_fn(head(x), y))


def fit(
    backbone: Backbone, strategy: Strategy, train: ImageSet, val: ImageSet, pipeline: BatchPipeline,
    cfg: TrainSpec, seed: int, on_epoch: Optional[EpochCallback] = None, strategy_name: str = "strategy",
    features: Optional[FeatureSource] = None, forward: Optional[Callable[[torch.Tensor], torch.Tensor]] = None,
) -> FitResult:
    """Train for cfg.epochs following the strategy's plans; `forward` may be a compiled model."""
    model, device = backbone.model, pipeline.device
    forward = forward or model
    g = torch.Generator(device=device if device.type == "cuda" else "cpu").manual_seed(seed)
    steps_per_epoch = max(1, len(train) // cfg.batch_size)
    if cfg.max_steps_per_epoch:
        steps_per_epoch = min(steps_per_epoch, cfg.max_steps_per_epoch)
    scaler = torch.amp.GradScaler(device.type, enabled=cfg.precision == "fp16" and device.type == "cuda")
    loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    clock = Stopwatch(device)
    result = FitResult()
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
            phase = _phase(plan, backbone, forward, train, val, pipeline, cfg, g,
                           features if cfg.feature_cache or plan.lbfgs else None)
            result.train_path = phase.path
            start, end = plan.schedule_epochs or (0, cfg.epochs)
            span = (start * steps_per_epoch, max(1, (end - start) * steps_per_epoch))
            warmup_steps = round(cfg.schedule.warmup_epochs * steps_per_epoch)
            timed_from = step + cfg.timing_warmup_steps  # compile/allocator warm-up after each change
            result.plans.append({**describe_plan(model, plan, epoch, cfg.optimizer.lr), "train_path": phase.path})
        if plan.lbfgs is not None:  # a closed-form probe: one solve replaces the epochs
            xt, yt = features("train")  # type: ignore[misc]
            loss = fit_lbfgs(phase.forward, xt, yt, plan.lbfgs.l2, plan.lbfgs.max_iter, cfg.label_smoothing)
            result.history.append({"epoch": epoch + 1, "train_loss": loss, "val_top1": phase.val_accuracy(),
                                   "phase": "lbfgs", "lr_factor": None})
            result.final_train_loss = loss
            break
        loss_sum = torch.zeros((), device=device)
        seen = window = 0
        factor = math.nan
        for x, y in phase.batches():
            if not clock.running and step >= timed_from:
                clock.start()
            factor = lr_factor(step - span[0], span[1], warmup_steps, cfg.schedule)
            set_lr(optimizer, cfg.optimizer.lr, factor)
            with autocast(device, cfg.precision):
                loss = loss_fn(phase.forward(x), y)
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
        result.history.append({"epoch": epoch + 1, "train_loss": epoch_loss, "val_top1": phase.val_accuracy(),
                               "phase": plan.phase, "lr_factor": round(factor, 6)})
        result.final_train_loss = epoch_loss
        apply_plan(model, plan)  # validation left the model in eval mode
        if on_epoch:
            on_epoch(epoch + 1, cfg.epochs, epoch_loss)
    if snapshot is not None:
        snapshot.verify(model, strategy_name)
    result.steps = step
    result.timed_train_samples, result.timed_train_seconds = clock.samples, clock.seconds
    result.train_samples_per_s = clock.throughput
    return result

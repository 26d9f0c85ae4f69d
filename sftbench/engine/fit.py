"""Train a backbone the way its strategy says. No I/O and no CLI: the runner owns those.

Two paths: an L-BFGS probe (one full-batch solve of the head on cached features) and the SGD
loop over the strategy's phases. A phase of the loop trains either on images (the model
forward, augmentation on the device) or, for probe phases with a feature source, on cached
frozen-backbone features through the head alone.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Optional

import torch
from torch import nn

from ..backbones.factory import Backbone
from ..data.pipeline import BatchPipeline
from ..data.types import ImageSet
from ..errors import StrategyViolationError, TrainingDivergedError
from ..schema import TrainSpec
from ..strategies.base import Strategy, TrainPlan
from .divergence import DivergenceWatch
from .evaluate import accuracy, autocast, evaluate
from .modes import apply_plan
from .optim import build_optimizer, describe_plan, lr_factor, set_lr
from .prefix import PrefixShortcut, prefix_shortcut
from .probe import head_accuracy, lbfgs_solve
from .timing import FetchClock, MemoryMeter, Stopwatch, timed_fetches
from .verify import FrozenSnapshot, check_optimizer

EpochCallback = Callable[[int, int, float], None]  # (epoch, epochs, train loss)
FeatureSource = Callable[[str], tuple[torch.Tensor, torch.Tensor]]  # split -> (features, labels) on device
Forward = Callable[[torch.Tensor], torch.Tensor]
TIMING_WINDOWS = 8  # train throughput is recorded per window, so verdicts see the case's own spread


@dataclass(frozen=True)
class FitData:
    train: ImageSet
    val: ImageSet
    features: Optional[FeatureSource] = None  # cached frozen-backbone features of each split


@dataclass(frozen=True)
class FitConfig:
    train: TrainSpec
    seed: int
    strategy_name: str = "strategy"  # for error messages
    forward: Optional[Forward] = None  # e.g. the compiled model; default: the backbone's model
    on_epoch: Optional[EpochCallback] = None
    memory: Optional[MemoryMeter] = None  # steady-state peak: reset once each phase is warm


@dataclass
class FitResult:
    final_train_loss: float = math.nan
    train_samples_per_s: Optional[float] = None
    timed_train_samples: int = 0
    timed_train_seconds: float = 0.0
    train_windows: list[float] = field(default_factory=list)  # samples/s per timing window
    data_samples_per_s: Optional[float] = None  # the image data path's own speed (FetchClock)
    data_windows: list[float] = field(default_factory=list)
    steps: int = 0
    train_path: str = "images"  # images | cached_features | cached_prefix (of the last phase)
    history: list[dict[str, Any]] = field(default_factory=list)
    plans: list[dict[str, Any]] = field(default_factory=list)


def fit(backbone: Backbone, strategy: Strategy, data: FitData, pipeline: BatchPipeline, config: FitConfig) -> FitResult:
    """Train for config.train.epochs following the strategy's plans."""
    first = strategy.plan(backbone, 0, config.train.epochs)
    if first.lbfgs is not None:
        return _fit_lbfgs_probe(backbone, first, data, config)
    return _SgdLoop(backbone, strategy, data, pipeline, config).run()


def _fit_lbfgs_probe(backbone: Backbone, plan: TrainPlan, data: FitData, config: FitConfig) -> FitResult:
    """Multinomial logistic regression of the head on frozen features: one solve replaces the epochs."""
    assert plan.lbfgs is not None and data.features is not None, "the runner always supplies features"
    model = backbone.model
    apply_plan(model, plan)
    head = model.get_submodule(backbone.head_module)
    optimizer = torch.optim.LBFGS([p for n, p in model.named_parameters() if n in plan.trainable], lr=1.0,
                                  max_iter=plan.lbfgs.max_iter, line_search_fn="strong_wolfe")
    check_optimizer(model, optimizer, plan, config.strategy_name)
    snapshot = FrozenSnapshot(model, plan)
    (xt, yt), (xv, yv) = data.features("train"), data.features("val")
    loss = lbfgs_solve(head, optimizer, xt, yt, plan.lbfgs.l2, config.train.label_smoothing)
    if not math.isfinite(loss):
        raise TrainingDivergedError(f"loss became {'NaN' if math.isnan(loss) else 'Inf'} in the L-BFGS probe solve; "
                                    "raise `l2` or check the features for NaN")
    snapshot.verify(model, config.strategy_name)
    result = FitResult(final_train_loss=loss, train_path="cached_features")
    result.plans.append({**describe_plan(model, plan, 0, config.train.optimizer.lr), "train_path": "cached_features"})
    result.history.append({"epoch": 1, "train_loss": loss, "val_top1": head_accuracy(head, xv, yv),
                           "phase": "lbfgs", "lr_factor": None})
    return result


@dataclass
class _Phase:
    """What one plan trains on: a batch iterator factory, the forward it feeds, val accuracy."""

    plan: TrainPlan
    batches: Callable[[], Iterator[tuple[torch.Tensor, torch.Tensor]]]
    forward: Forward
    val_accuracy: Callable[[], Optional[float]]
    path: str
    optimizer: torch.optim.Optimizer
    snapshot: FrozenSnapshot
    span: tuple[int, int]  # (first step, number of steps) of the plan's LR schedule
    warmup_steps: int
    timed_from: int  # compile/allocator warm-up after each change is left out of the clock


class _SgdLoop:
    """The epoch loop; a new phase starts whenever the strategy's plan changes."""

    def __init__(self, backbone: Backbone, strategy: Strategy, data: FitData, pipeline: BatchPipeline,
                 config: FitConfig):
        self.backbone, self.strategy, self.data, self.pipeline, self.config = backbone, strategy, data, pipeline, config
        self.cfg = config.train
        device = pipeline.device
        self.device = device
        self.forward = config.forward or backbone.model
        self.generator = torch.Generator(device=device if device.type == "cuda" else "cpu").manual_seed(config.seed)
        per_epoch = max(1, len(data.train) // self.cfg.batch_size)
        self.steps_per_epoch = min(per_epoch, self.cfg.max_steps_per_epoch or per_epoch)
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.cfg.precision == "fp16" and device.type == "cuda")
        self.loss_fn = nn.CrossEntropyLoss(label_smoothing=self.cfg.label_smoothing)
        self.clock = Stopwatch(device)
        self.fetch = FetchClock()
        self.watch = DivergenceWatch(device)
        self.result = FitResult()
        self.phase: Optional[_Phase] = None
        self.shortcut: Optional[PrefixShortcut] = None
        self.step = 0
        self.warm_pending = True
        timed_steps = self.steps_per_epoch * self.cfg.epochs - self.cfg.timing_warmup_steps
        self.window_steps = max(1, timed_steps // TIMING_WINDOWS)  # steps per throughput window

    def run(self) -> FitResult:
        for epoch in range(self.cfg.epochs):
            plan = self.strategy.plan(self.backbone, epoch, self.cfg.epochs)
            if self.phase is None or plan != self.phase.plan:
                self._start_phase(plan, epoch)
            self._train_epoch(epoch)
        if self.phase is not None:
            self.phase.snapshot.verify(self.backbone.model, self.config.strategy_name)
        self._drop_shortcut()
        self.result.steps = self.step
        self.result.timed_train_samples, self.result.timed_train_seconds = self.clock.samples, self.clock.seconds
        self.result.train_samples_per_s = self.clock.throughput
        self.result.train_windows = [round(w, 3) for w in self.clock.windows]
        self.result.data_samples_per_s = self.fetch.throughput
        self.result.data_windows = [round(w, 3) for w in self.fetch.windows]
        return self.result

    def _warm(self) -> None:
        """The first timed step of a phase: what warm-up allocated (autotuning, compile) stays cold."""
        if self.warm_pending and self.config.memory is not None:
            self.config.memory.warm()
        self.warm_pending = False

    def _start_phase(self, plan: TrainPlan, epoch: int) -> None:
        model, name = self.backbone.model, self.config.strategy_name
        if plan.lbfgs is not None:
            raise StrategyViolationError(f"strategy {name!r} asks for an L-BFGS probe in epoch {epoch + 1}; an "
                                         "L-BFGS probe must be the whole run (its plan from epoch 0)")
        if self.phase is not None:
            self.phase.snapshot.verify(model, name)
        self._drop_shortcut()
        apply_plan(model, plan)
        if self.config.memory is not None:
            self.config.memory.new_phase()  # new trainable set: new gradients and optimizer state
        self.warm_pending = True
        optimizer = build_optimizer(model, plan, self.cfg.optimizer)
        check_optimizer(model, optimizer, plan, name)
        start, end = plan.schedule_epochs or (0, self.cfg.epochs)
        batches, forward, val_accuracy, path = self._inputs(plan)
        self.phase = _Phase(
            plan, batches, forward, val_accuracy, path, optimizer, FrozenSnapshot(model, plan),
            span=(start * self.steps_per_epoch, max(1, (end - start) * self.steps_per_epoch)),
            warmup_steps=round(self.cfg.schedule.warmup_epochs * self.steps_per_epoch),
            timed_from=self.step + self.cfg.timing_warmup_steps,
        )
        self.result.train_path = path
        self.result.plans.append({**describe_plan(model, plan, epoch, self.cfg.optimizer.lr), "train_path": path})

    def _inputs(self, plan: TrainPlan) -> tuple[Callable[[], Iterator[Any]], Forward, Callable[[], Optional[float]], str]:
        """Cached features through the head (probe phases without augmentation), a cached frozen prefix
        into the trainable rest (prefix.py), else images."""
        cfg, data, pipeline = self.cfg, self.data, self.pipeline
        if plan.probe and cfg.feature_cache and data.features is not None and pipeline.prep.augment == "none":
            head = self.backbone.model.get_submodule(self.backbone.head_module)
            (xt, yt), (xv, yv) = data.features("train"), data.features("val")
            return (lambda: _feature_batches(xt, yt, cfg, self.generator), head,
                    lambda: head_accuracy(head, xv, yv), "cached_features")

        def val_images() -> Optional[float]:
            if not len(data.val):
                return None
            return accuracy(evaluate(self.backbone.model, data.val, pipeline, cfg, self.forward, self.config.memory))

        if self._prefix_allowed(plan):
            found = prefix_shortcut(self.backbone.model, self.forward, set(plan.trainable), data.train, pipeline,
                                    cfg.eval_batch_size or 2 * cfg.batch_size, lambda: autocast(self.device, cfg.precision))
            if found is not None:
                self.shortcut, xa, ya = found
                return (lambda: _feature_batches(xa, ya, cfg, self.generator), self.shortcut.forward, val_images,
                        "cached_prefix")
        return (lambda: pipeline.batches(data.train, cfg.batch_size, shuffle=True, generator=self.generator,
                                         augment=True, drop_last=True, max_steps=cfg.max_steps_per_epoch),
                self.forward, val_images, "images")

    def _prefix_allowed(self, plan: TrainPlan) -> bool:
        """A frozen prefix is cached where it is exact and pays: no augmentation, no compiled model,
        no step cap (a smoke run would cache a whole split to train a few steps)."""
        cfg = self.cfg
        return (cfg.feature_cache and self.pipeline.prep.augment == "none" and not cfg.compile
                and cfg.max_steps_per_epoch is None)

    def _drop_shortcut(self) -> None:
        if self.shortcut is not None:
            self.shortcut.close()
            self.shortcut = None

    def _train_epoch(self, epoch: int) -> None:
        phase, cfg = self.phase, self.cfg
        assert phase is not None
        loss_sum = torch.zeros((), device=self.device)
        seen = window = window_steps = 0
        factor, epoch_start = math.nan, self.step
        for x, y, fetch_s in timed_fetches(phase.batches()):
            if not self.clock.running and self.step >= phase.timed_from:
                self._warm()
                self.clock.start()
            if self.clock.running and phase.path == "images":
                self.fetch.add(fetch_s, len(y))
            factor = lr_factor(self.step - phase.span[0], phase.span[1], phase.warmup_steps, cfg.schedule)
            set_lr(phase.optimizer, cfg.optimizer.lr, factor)
            loss = self._step(phase, x, y)
            loss_sum += loss * len(y)  # stays on the device: no sync per step
            self.watch.observe(loss)
            seen += len(y)
            self.step += 1
            self.watch.check(epoch, epoch_start, self.step)
            if self.clock.running:
                window, window_steps = window + len(y), window_steps + 1
                if window_steps == self.window_steps:  # one device sync per window, not per step
                    self.clock.lap(window)
                    self.fetch.close()
                    window = window_steps = 0
        self.clock.stop(window)
        self.fetch.close()
        self.watch.check(epoch, epoch_start, self.step, force=True)
        epoch_loss = (loss_sum / max(seen, 1)).item()
        self.result.history.append({"epoch": epoch + 1, "train_loss": epoch_loss, "val_top1": phase.val_accuracy(),
                                    "phase": phase.plan.phase, "lr_factor": round(factor, 6)})
        self.result.final_train_loss = epoch_loss
        apply_plan(self.backbone.model, phase.plan)  # validation left the model in eval mode
        if self.config.on_epoch:
            self.config.on_epoch(epoch + 1, cfg.epochs, epoch_loss)

    def _step(self, phase: _Phase, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with autocast(self.device, self.cfg.precision):
            loss = self.loss_fn(phase.forward(x), y)
        phase.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.cfg.grad_clip_norm:
            self.scaler.unscale_(phase.optimizer)
            nn.utils.clip_grad_norm_(self.backbone.model.parameters(), self.cfg.grad_clip_norm)
        self.scaler.step(phase.optimizer)
        self.scaler.update()
        return loss.detach()


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

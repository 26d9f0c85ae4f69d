"""Evaluation and classification metrics."""
from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Optional

import torch
from torch import nn

from ..data.pipeline import BatchPipeline
from ..data.types import ImageSet
from ..schema import TrainSpec
from .timing import MemoryMeter, Stopwatch

EVAL_WINDOWS = 8  # eval throughput is recorded per window of batches


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager[Any]:
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


@dataclass
class EvalResult:
    predictions: torch.Tensor
    labels: torch.Tensor
    samples_per_s: Optional[float]
    windows: list[float]  # samples/s per timed batch


@torch.inference_mode()
def evaluate(model: nn.Module, data: ImageSet, pipeline: BatchPipeline, cfg: TrainSpec,
             forward: Optional[Callable[[torch.Tensor], torch.Tensor]] = None,
             memory: Optional[MemoryMeter] = None) -> EvalResult:
    """Predictions for a split. Every batch has the same shape (the last is padded, its padding's
    predictions dropped), so no new shape is tuned or compiled inside the timed window; the first
    batch is warm-up and left out of the throughput (unless it is the only one)."""
    model.eval()
    clock = Stopwatch(pipeline.device)
    predictions = []
    batch_size = cfg.eval_batch_size or 2 * cfg.batch_size
    warmup = 1 if len(data) > batch_size else 0
    per_window = max(1, (math.ceil(len(data) / batch_size) - warmup) // EVAL_WINDOWS)
    window = batches = 0
    if memory is not None:
        memory.new_phase()
    for i, (x, _, real) in enumerate(pipeline.padded_batches(data, batch_size)):
        if i == warmup:
            clock.start()
        with autocast(pipeline.device, cfg.precision):
            predictions.append((forward or model)(x)[:real].argmax(dim=1))
        if i == 0 and memory is not None:
            memory.warm()  # this shape is tuned now
        if i >= warmup:
            window, batches = window + real, batches + 1
            if batches == per_window:  # one device sync per window, not per batch
                clock.lap(window)
                window = batches = 0
    clock.stop(window)
    preds = torch.cat(predictions) if predictions else torch.empty(0, dtype=torch.long)
    return EvalResult(preds.cpu(), data.labels.cpu(), clock.throughput, [round(w, 3) for w in clock.windows])


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

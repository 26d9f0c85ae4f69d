"""Train a plan whose frozen part is a prefix of the network on that prefix's cached output.

last_k (and any plan whose trainable parameters all sit after some module in forward order) runs
the same frozen, eval-mode prefix on every image in every epoch. Its output is computed once per
phase instead; each step feeds a batch of it to the first trainable module through a forward
pre-hook, while the prefix itself runs on one image (its output is discarded). Nothing about the
result changes but the time: the boundary is found by tracing one forward, and the shortcut is
kept only if it reproduces the full model's logits on real images (else the image path is used).
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Optional

import torch
from torch import nn

from ..data.pipeline import BatchPipeline
from ..data.types import ImageSet

DEFAULT_BUDGET_MB = 1024.0  # the cached activations of a split may take this much; beyond it, images


def budget_mb() -> float:
    return float(os.environ.get("SFTBENCH_PREFIX_CACHE_MB", DEFAULT_BUDGET_MB))


class _Captured(Exception):
    """Stops a forward at the boundary once its input is taken."""


def _forward_order(model: nn.Module, example: torch.Tensor) -> list[str]:
    order: list[str] = []
    hooks = [m.register_forward_pre_hook(lambda _m, _a, name=name: order.append(name))
             for name, m in model.named_modules()]
    try:
        with torch.no_grad():
            model(example)
    finally:
        for hook in hooks:
            hook.remove()
    return order


def find_boundary(model: nn.Module, trainable: set[str], example: torch.Tensor) -> Optional[str]:
    """The first module, in forward order, whose parameters all train, with every parameter entered
    before it frozen and at least one of them present; None when no such prefix exists."""
    modules = dict(model.named_modules())
    owned = {name: [f"{name}.{p}" if name else p for p, _ in m.named_parameters(recurse=False)]
             for name, m in modules.items()}
    order = list(dict.fromkeys(_forward_order(model, example)))
    for index, name in enumerate(order):
        inside = [f"{name}.{p}" if name else p for p, _ in modules[name].named_parameters()]
        if not inside or not all(p in trainable for p in inside):
            continue
        # ancestors' own parameters (a ViT's cls_token, pos_embed) may be used on either side: counted
        # as before, so a trainable one keeps the image path
        before = [p for earlier in order[:index] for p in owned[earlier]]
        if before and not any(p in trainable for p in before):
            return name
        return None
    return None


class PrefixShortcut:
    """`forward(activations)`: the model's output with `activations` as the boundary's input."""

    def __init__(self, model: nn.Module, forward: Callable[[torch.Tensor], torch.Tensor], boundary: str,
                 example: torch.Tensor):
        self.model, self.full_forward, self.example = model, forward, example[:1]
        self.pending: Optional[torch.Tensor] = None
        self.capture = False
        self.handle = model.get_submodule(boundary).register_forward_pre_hook(self._hook)

    def _hook(self, _module: nn.Module, args: tuple[Any, ...]) -> Optional[tuple[Any, ...]]:
        if self.capture:
            self.pending = args[0]
            raise _Captured
        if self.pending is None:
            return None
        x, self.pending = self.pending, None
        return (x, *args[1:])

    def activations(self, images: torch.Tensor) -> torch.Tensor:
        self.capture = True
        try:
            with torch.no_grad():
                self.full_forward(images)
        except _Captured:
            pass
        finally:
            self.capture = False
        out, self.pending = self.pending, None
        assert out is not None, "the boundary module did not run"
        return out.detach()

    def forward(self, activations: torch.Tensor) -> torch.Tensor:
        self.pending = activations
        return self.full_forward(self.example)

    def close(self) -> None:
        self.handle.remove()


@contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    modes = {m: m.training for m in model.modules()}
    model.eval()
    try:
        yield
    finally:
        for m, training in modes.items():
            m.train(training)


def _reproduces(shortcut: PrefixShortcut, images: torch.Tensor) -> bool:
    """The shortcut's logits equal the full model's on these images (eval mode: no batch statistics)."""
    with _eval_mode(shortcut.model), torch.no_grad():
        full = shortcut.full_forward(images)
        short = shortcut.forward(shortcut.activations(images))
    return full.shape == short.shape and torch.allclose(full, short, rtol=1e-4, atol=1e-5)


def prefix_shortcut(model: nn.Module, forward: Callable[[torch.Tensor], torch.Tensor], trainable: set[str],
                    data: ImageSet, pipeline: BatchPipeline, batch_size: int,
                    autocast: Callable[[], Any]) -> Optional[tuple[PrefixShortcut, torch.Tensor, torch.Tensor]]:
    """(shortcut, activations, labels) of the training split, in order; None where the plan has no
    frozen prefix, the shortcut does not reproduce the model, or the activations exceed the budget."""
    if len(data) < 2:
        return None
    probe, _ = next(pipeline.batches(data, min(8, len(data)), shuffle=False))
    with _eval_mode(model), autocast():
        boundary = find_boundary(model, trainable, probe[:1])
    if boundary is None:
        return None
    shortcut = PrefixShortcut(model, forward, boundary, probe)
    with autocast():
        ok = _reproduces(shortcut, probe)
        one = shortcut.activations(probe[:1]) if ok else None
    if one is None or one.element_size() * one.numel() * len(data) > budget_mb() * 2**20:
        shortcut.close()
        return None
    with autocast():
        parts = [(shortcut.activations(x), y) for x, y in pipeline.batches(data, batch_size, shuffle=False)]
    return shortcut, torch.cat([a for a, _ in parts]), torch.cat([y for _, y in parts])

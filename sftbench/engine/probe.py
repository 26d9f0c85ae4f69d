"""The head on fixed features: the L-BFGS logistic-regression solve, and its accuracy on a split.

Multinomial logistic regression on frozen features, as in Kornblith et al. 2019, CLIP and DINOv2.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn


def lbfgs_solve(head: nn.Module, optimizer: torch.optim.LBFGS, x: torch.Tensor, y: torch.Tensor, l2: float,
                label_smoothing: float = 0.0) -> float:
    """Full-batch fit of the head, L2 on its weights; returns the unpenalised training loss."""
    weights = [p for n, p in head.named_parameters() if n.endswith("weight")]
    loss_fn = nn.CrossEntropyLoss(label_smoothing=label_smoothing)

    def closure() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(head(x), y) + l2 * sum((w * w).sum() for w in weights)
        loss.backward()
        return loss

    optimizer.step(closure)
    with torch.no_grad():
        return float(loss_fn(head(x), y))


def head_accuracy(head: nn.Module, x: torch.Tensor, y: torch.Tensor) -> Optional[float]:
    if not len(y):
        return None
    with torch.inference_mode():
        return float((head(x).argmax(1) == y).float().mean())

"""Catch a NaN or infinite training loss at the step it happens, without a device sync per step.

The first bad step and its loss are tracked on the device; the host looks only every
`check_every` steps (every step on the CPU, where reading costs nothing) and at epoch ends.
"""
from __future__ import annotations

import torch

from ..errors import TrainingDivergedError

CUDA_CHECK_EVERY = 16  # steps between host reads on an accelerator: at most this many wasted steps


class DivergenceWatch:
    def __init__(self, device: torch.device):
        self.check_every = 1 if device.type == "cpu" else CUDA_CHECK_EVERY
        self._first_bad = torch.full((), -1, dtype=torch.long, device=device)  # global step, 0-based
        self._bad_loss = torch.zeros((), device=device)
        self._step = torch.zeros((), dtype=torch.long, device=device)

    def observe(self, loss: torch.Tensor) -> None:
        """Note one step's loss (a device scalar); no host sync."""
        new = ~torch.isfinite(loss) & (self._first_bad < 0)
        self._first_bad = torch.where(new, self._step, self._first_bad)
        self._bad_loss = torch.where(new, loss.float(), self._bad_loss)
        self._step += 1

    def check(self, epoch: int, epoch_start: int, step: int, force: bool = False) -> None:
        """Raise if a loss went bad. `epoch_start` and `step` count global steps, as `observe` does."""
        if not force and step % self.check_every:
            return
        first = int(self._first_bad)
        if first < 0:
            return
        value = "NaN" if torch.isnan(self._bad_loss) else "Inf"
        in_epoch = first - epoch_start + 1
        raise TrainingDivergedError(
            f"loss became {value} at epoch {epoch + 1}, step {in_epoch}; lower the learning rate, "
            "set `grad_clip_norm`, or use precision fp32"
        )

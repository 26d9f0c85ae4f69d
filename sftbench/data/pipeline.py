"""Batches on the device: uint8 -> float, grey -> RGB, augmentation, resize, normalisation.

The whole uint8 split is moved to the device once; each batch is indexed, augmented and resized
there, so no CPU worker pool sits between the data and the model.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from .types import ImageSet


@dataclass(frozen=True)
class Preprocessing:
    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str = "bilinear"  # the backbone's pretrained interpolation
    augment: str = "none"  # none | flip | crop_flip (train batches only)
    channels_last: bool = False


def choose_placement(requested: str, total_bytes: int, device: torch.device, budget: float = 0.25) -> str:
    """`auto`: on the device when the uint8 data takes under `budget` of the free accelerator memory."""
    if requested != "auto":
        return requested
    if device.type != "cuda":
        return "device"  # CPU (and MPS unified memory): the data is already where the model is
    free, _ = torch.cuda.mem_get_info(device)
    return "device" if total_bytes < budget * free else "host"


def random_flip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    flip = torch.rand(x.shape[0], generator=generator, device=generator.device) < 0.5
    return torch.where(flip[:, None, None, None].to(x.device), x.flip(-1), x)


def random_crop(x: torch.Tensor, generator: torch.Generator, pad_fraction: float = 0.125) -> torch.Tensor:
    """Reflect-pad then crop back to size at a random offset per image (CIFAR's pad-4 crop at 32 px)."""
    n, c, h, w = x.shape
    pad = max(1, round(pad_fraction * h))
    padded = F.pad(x, (pad, pad, pad, pad), mode="reflect")
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator, device=generator.device).to(x.device)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator, device=generator.device).to(x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    chan = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[batch, chan, rows, cols]


class BatchPipeline:
    """Turns a device-resident uint8 ImageSet into normalised float batches."""

    def __init__(self, prep: Preprocessing, device: torch.device):
        self.prep = prep
        self.device = device
        self.mean = torch.tensor(prep.mean, device=device).view(1, 3, 1, 1)
        self.std = torch.tensor(prep.std, device=device).view(1, 3, 1, 1)

    def to_device(self, data: ImageSet, placement: str = "device") -> ImageSet:
        """`device`: the uint8 images live on the accelerator; `host`: they stay in host memory and
        each batch is copied over asynchronously. Labels always go to the device."""
        labels = data.labels.to(self.device)
        if placement == "host" and self.device.type == "cuda":
            return ImageSet(data.images, labels)  # batches are staged through pinned buffers (PinnedGather)
        return ImageSet(data.images.to(self.device), labels)

    def transform(self, images: torch.Tensor, augment: bool, generator: torch.Generator | None = None) -> torch.Tensor:
        x = images.float().div_(255.0)
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if augment and self.prep.augment != "none":
            assert generator is not None
            if self.prep.augment == "crop_flip":
                x = random_crop(x, generator)
            x = random_flip(x, generator)
        size = self.prep.image_size
        if x.shape[-2:] != (size, size):
            x = F.interpolate(x, size=(size, size), mode=self.prep.interpolation, antialias=True, align_corners=False)
        x = (x - self.mean) / self.std
        return x.contiguous(memory_format=torch.channels_last) if self.prep.channels_last else x

    def batches(
        self, data: ImageSet, batch_size: int, *, shuffle: bool, generator: torch.Generator | None = None,
        augment: bool = False, drop_last: bool = False, max_steps: int | None = None,
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(data)
        order = torch.randperm(n, generator=generator, device=generator.device).to(self.device) if shuffle else None
        # host-placed images are indexed on the CPU: the order crosses over once per epoch, not per step
        host_order = order.to(data.images.device) if order is not None else None
        gather = self._gatherer(data, batch_size)
        stop = n - n % batch_size if drop_last and n >= batch_size else n
        for step, start in enumerate(range(0, stop, batch_size)):
            if max_steps is not None and step >= max_steps:
                return
            if order is None:
                images, labels = gather(torch.arange(start, min(start + batch_size, n))), data.labels[start:start + batch_size]
            else:
                images, labels = gather(host_order[start:start + batch_size]), data.labels[order[start:start + batch_size]]
            yield self.transform(images, augment, generator), labels

    def padded_batches(self, data: ImageSet, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor, int]]:
        """(x, labels, real) in order, every x exactly `batch_size` images: a short last batch is
        padded with copies of its last image. One shape means cuDNN tunes once and a compiled
        model never recompiles inside a timed window; callers keep the first `real` outputs."""
        n = len(data)
        gather = self._gatherer(data, batch_size)
        for start in range(0, n, batch_size):
            real = min(batch_size, n - start)
            index = torch.arange(start, start + batch_size).clamp_(max=n - 1)
            yield self.transform(gather(index), augment=False), data.labels[start:start + real], real

    def _gatherer(self, data: ImageSet, batch_size: int) -> Callable[[torch.Tensor], torch.Tensor]:
        """index -> uint8 batch on the device. Host-placed images on CUDA go through pinned buffers."""
        images = data.images
        if images.device.type == "cpu" and self.device.type == "cuda":
            return PinnedGather(images, batch_size, self.device)
        return lambda index: images[index.to(images.device)].to(self.device, non_blocking=True)


class PinnedGather:
    """Rows of host images -> the device, through two pinned staging buffers used in turn.

    Indexing a pinned tensor returns pageable memory, and a `non_blocking` copy from pageable
    memory blocks; gathering straight into a pinned buffer keeps the copy asynchronous. A CUDA
    event per buffer says when its last copy is done, so the buffer is never overwritten early.
    """

    def __init__(self, images: torch.Tensor, batch_size: int, device: torch.device,
                 pin: Callable[[torch.Tensor], torch.Tensor] = torch.Tensor.pin_memory,
                 new_event: Callable[[], Any] = lambda: torch.cuda.Event()):
        self.images, self.device, self.new_event = images, device, new_event
        self.buffers = [pin(torch.empty((batch_size, *images.shape[1:]), dtype=images.dtype)) for _ in range(2)]
        self.events: list[Any] = [None, None]
        self.turn = 0

    def __call__(self, index: torch.Tensor) -> torch.Tensor:
        k, self.turn = self.turn, 1 - self.turn
        if self.events[k] is not None:
            self.events[k].synchronize()  # its previous copy must have left the buffer
        staged = self.buffers[k][: len(index)]
        torch.index_select(self.images, 0, index.cpu(), out=staged)
        batch = staged.to(self.device, non_blocking=True)
        self.events[k] = self.new_event()
        self.events[k].record()
        return batch

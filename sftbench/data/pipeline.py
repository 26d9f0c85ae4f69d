"""Batches on the device: uint8 -> float, grey -> RGB, augmentation, resize, normalisation.

The whole uint8 split is moved to the device once; each batch is indexed, augmented and resized
there, so no CPU worker pool sits between the data and the model.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

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
        """`device`: the uint8 images live on the accelerator; `host`: they stay in (pinned) host
        memory and each batch is copied over asynchronously. Labels always go to the device."""
        labels = data.labels.to(self.device)
        if placement == "host" and self.device.type == "cuda":
            return ImageSet(data.images.pin_memory(), labels)
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
        stop = n - n % batch_size if drop_last and n >= batch_size else n
        for step, start in enumerate(range(0, stop, batch_size)):
            if max_steps is not None and step >= max_steps:
                return
            index = order[start:start + batch_size] if order is not None else slice(start, start + batch_size)
            images = data.images[index.to(data.images.device) if isinstance(index, torch.Tensor) else index]
            yield self.transform(images.to(self.device, non_blocking=True), augment, generator), data.labels[index]

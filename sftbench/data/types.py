"""The data types every stage shares: uint8 image sets, a dataset's official splits, a case's splits."""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Optional

import torch

from .digest import tensor_digest


@dataclass(frozen=True)
class ImageSet:
    images: torch.Tensor  # uint8 (N, C, H, W)
    labels: torch.Tensor  # int64 (N,)

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index: torch.Tensor) -> "ImageSet":
        return ImageSet(self.images[index], self.labels[index])


@dataclass(frozen=True)
class RawDataset:
    """What a loader returns: the official train and test splits, and where they came from."""

    train: ImageSet
    test: ImageSet
    classes: tuple[str, ...]
    source: str
    known_digests: Optional[dict[str, str]] = None  # from a loader that already hashed its files

    @functools.cached_property
    def digests(self) -> dict[str, str]:
        """Content hashes of both splits (feature-cache keys); computed once per loaded dataset."""
        if self.known_digests is not None:
            return self.known_digests
        return {name: tensor_digest([("images", s.images), ("labels", s.labels)])
                for name, s in (("train", self.train), ("test", self.test))}


@dataclass(frozen=True)
class Splits:
    train: ImageSet
    val: ImageSet
    test: ImageSet
    classes: tuple[str, ...]
    source: str
    raw: Optional["RawDataset"] = None  # with the indices below: lets probes reuse cached features
    index: Optional[dict[str, torch.Tensor]] = None  # split -> indices into raw.train / raw.test

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}



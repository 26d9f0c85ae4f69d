"""A case's data: the official splits loaded once per process, then carved with the case's seed."""
from __future__ import annotations

import functools
import json
from pathlib import Path

import torch

from ..errors import ConfigError
from ..paths import data_root
from ..schema import DatasetSpec
from .datasets import DATASETS
from .types import RawDataset, Splits


@functools.lru_cache(maxsize=4)
def _load_raw(name: str, root: str, options_json: str) -> RawDataset:
    return DATASETS.get(name).factory(Path(root), json.loads(options_json))


def load_raw(spec: DatasetSpec, default_root: str | None = None) -> RawDataset:
    """The official splits, cached in memory so the cases of one run share one load."""
    root = data_root(spec.root or default_root)
    return _load_raw(spec.name, str(root), json.dumps(spec.options, sort_keys=True))


def check_dataset(spec: DatasetSpec, default_root: str | None = None) -> RawDataset:
    """Preflight: the dataset loads (from disk, or downloaded when online) and the suite's sizes fit it."""
    raw = load_raw(spec, default_root)
    _check_sizes(raw, spec)
    return raw


def _check_sizes(raw: RawDataset, spec: DatasetSpec) -> None:
    available = len(raw.train)
    wanted = (spec.train_size or 0) + (spec.val_size or 0) + (spec.shots or 0) * len(raw.classes)
    if wanted > available:
        parts = " + ".join(f"{key} {value}" for key, value in (("train_size", spec.train_size),
                           ("val_size", spec.val_size), ("shots x classes", spec.shots and spec.shots * len(raw.classes)))
                           if value)
        raise ConfigError(f"dataset {spec.label!r}: {parts} exceeds the {available} training images; lower it")
    if spec.test_size is not None and spec.test_size > len(raw.test):
        raise ConfigError(f"dataset {spec.label!r}: test_size {spec.test_size} exceeds the {len(raw.test)} test images; "
                          "lower it")


def _first_per_class(order: torch.Tensor, labels: torch.Tensor, shots: int, spec: DatasetSpec,
                     classes: tuple[str, ...]) -> torch.Tensor:
    """The first `shots` images of each class in the seeded order: stratified, stable per seed."""
    ordered = labels[order]
    rank = torch.zeros_like(ordered)
    for label in range(len(classes)):
        members = ordered == label
        rank[members] = torch.arange(int(members.sum()))
        if int(members.sum()) < shots:
            raise ConfigError(f"dataset {spec.label!r}: shots {shots} but class {classes[label]!r} has only "
                              f"{int(members.sum())} training images; lower shots")
    return order[rank < shots]


def _train_and_val(raw: RawDataset, spec: DatasetSpec, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices into raw.train: `shots` per class, or train_size + val_size, or a val_fraction of the pool."""
    order = torch.randperm(len(raw.train), generator=torch.Generator().manual_seed(seed))
    if spec.shots is not None:
        train = _first_per_class(order, raw.train.labels, spec.shots, spec, raw.classes)
        rest = order[~torch.isin(order, train)]
        return train, rest[: spec.val_size or 0]
    if spec.val_size is not None:
        end = spec.val_size + spec.train_size if spec.train_size is not None else None
        return order[spec.val_size:end], order[: spec.val_size]
    if spec.train_size is not None:
        order = order[: spec.train_size]
    n_val = round(spec.val_fraction * len(order))
    return order[n_val:], order[:n_val]


def make_splits(raw: RawDataset, spec: DatasetSpec, seed: int) -> Splits:
    """Carve training and validation out of the official training split with the seed; the test
    subset ignores the seed, and so does the training pool when the spec fixes `split_seed`."""
    _check_sizes(raw, spec)
    train, val = _train_and_val(raw, spec, seed if spec.split_seed is None else spec.split_seed)
    test_index = torch.arange(len(raw.test))
    if spec.test_size is not None:
        test_order = torch.randperm(len(raw.test), generator=torch.Generator().manual_seed(0))
        test_index = test_order[: spec.test_size].sort().values
    return Splits(
        train=raw.train.subset(train),
        val=raw.train.subset(val),
        test=raw.test.subset(test_index),
        classes=raw.classes,
        source=raw.source,
        raw=raw,
        index={"train": train, "val": val, "test": test_index},
    )

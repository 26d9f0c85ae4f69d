"""A case's data: the official splits loaded once per process, then carved with the case's seed."""
from __future__ import annotations

import functools
import json
from pathlib import Path

import torch

from ..errors import ConfigError
from ..paths import data_root
from ..schema import DatasetSpec
from .builtin import DATASETS
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
    for key, size, available, what in (("train_size", spec.train_size, len(raw.train), "training"),
                                       ("test_size", spec.test_size, len(raw.test), "test")):
        if size is not None and size > available:
            raise ConfigError(f"dataset {spec.label!r}: {key} {size} exceeds the {available} {what} images; lower it")


def make_splits(raw: RawDataset, spec: DatasetSpec, seed: int) -> Splits:
    """Carve validation out of the training pool with the seed; the test subset ignores the seed."""
    _check_sizes(raw, spec)
    pool_order = torch.randperm(len(raw.train), generator=torch.Generator().manual_seed(seed))
    if spec.train_size is not None:
        pool_order = pool_order[: spec.train_size]
    n_val = round(spec.val_fraction * len(pool_order))
    test_index = torch.arange(len(raw.test))
    if spec.test_size is not None:
        test_order = torch.randperm(len(raw.test), generator=torch.Generator().manual_seed(0))
        test_index = test_order[: spec.test_size].sort().values
    return Splits(
        train=raw.train.subset(pool_order[n_val:]),
        val=raw.train.subset(pool_order[:n_val]),
        test=raw.test.subset(test_index),
        classes=raw.classes,
        source=raw.source,
        raw=raw,
        index={"train": pool_order[n_val:], "val": pool_order[:n_val], "test": test_index},
    )

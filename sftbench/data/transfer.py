"""The standard transfer datasets, through torchvision's classes and their official splits.

One adapter: torchvision finds (or downloads) the files and reads the split lists; sftbench decodes
the images once to the stored size and caches them (`data/images.py`), like `image_folder`. Where
a dataset has train and val, the training pool is train + val (sftbench carves its own validation
with the case's seed); EuroSAT and Caltech-101 ship no split, so a fixed stratified
`test_fraction` per class is held out, the same for every seed.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
import torchvision.datasets as tvd

from .builtin import open_torchvision
from .folder import StoreOptions, decoded, parse_options
from .images import FileList
from .registry import DATASETS
from .types import ImageSet, RawDataset


@dataclass(frozen=True)
class TransferSet:
    cls: str  # torchvision.datasets class name
    label: str
    classes: int
    sizes: tuple[int, int]  # official training pool and test sizes (train+val); (images, 0) with no split
    train: tuple[dict[str, Any], ...]  # constructor arguments of each piece of the training pool
    test: Optional[dict[str, Any]]  # None: no official split, a stratified holdout instead
    common: dict[str, Any] = field(default_factory=dict)


TRANSFER_SETS = {
    "flowers102": TransferSet("Flowers102", "Oxford Flowers-102", 102, (2040, 6149),
                              ({"split": "train"}, {"split": "val"}), {"split": "test"}),
    "oxford_pets": TransferSet("OxfordIIITPet", "Oxford-IIIT Pets", 37, (3680, 3669), ({"split": "trainval"},),
                               {"split": "test"}, {"target_types": "category"}),
    "dtd": TransferSet("DTD", "Describable Textures (partition 1)", 47, (3760, 1880),
                       ({"split": "train"}, {"split": "val"}), {"split": "test"}),
    "fgvc_aircraft": TransferSet("FGVCAircraft", "FGVC-Aircraft (variants)", 100, (6667, 3333),
                                 ({"split": "trainval"},), {"split": "test"}),
    "stanford_cars": TransferSet("StanfordCars", "Stanford Cars", 196, (8144, 8041), ({"split": "train"},),
                                 {"split": "test"}),
    "food101": TransferSet("Food101", "Food-101", 101, (75750, 25250), ({"split": "train"},), {"split": "test"}),
    "svhn": TransferSet("SVHN", "SVHN (cropped digits)", 10, (73257, 26032), ({"split": "train"},), {"split": "test"}),
    "stl10": TransferSet("STL10", "STL-10 (labelled)", 10, (5000, 8000), ({"split": "train"},), {"split": "test"}),
    "eurosat": TransferSet("EuroSAT", "EuroSAT RGB", 10, (27000, 0), ({},), None),
    "caltech101": TransferSet("Caltech101", "Caltech-101", 101, (8677, 0),
                              ({},), None, {"target_type": "category"}),
    "gtsrb": TransferSet("GTSRB", "German Traffic Signs", 43, (26640, 12630), ({"split": "train"},),
                         {"split": "test"}),
}


def _files(dataset: Any) -> list[tuple[Path, int]]:
    """(file, label) pairs from a torchvision dataset object, without decoding anything."""
    if hasattr(dataset, "_samples"):  # StanfordCars, GTSRB
        return [(Path(f), int(y)) for f, y in dataset._samples]
    if hasattr(dataset, "samples"):  # EuroSAT (an ImageFolder)
        return [(Path(f), int(y)) for f, y in dataset.samples]
    if isinstance(dataset, tvd.Caltech101):
        folder = Path(dataset.root) / "101_ObjectCategories"
        return [(folder / dataset.categories[y] / f"image_{i:04d}.jpg", int(y)) for i, y in zip(dataset.index, dataset.y)]
    files = getattr(dataset, "_image_files", None) or dataset._images  # Flowers, DTD, Aircraft, Food, Pets
    return [(Path(f), int(y)) for f, y in zip(files, dataset._labels)]


def _classes(dataset: Any, labels: torch.Tensor) -> tuple[str, ...]:
    names = getattr(dataset, "classes", None) or getattr(dataset, "categories", None)
    count = int(labels.max()) + 1 if len(labels) else 0
    return tuple(map(str, names)) if names and len(names) >= count else tuple(str(i) for i in range(count))


def _open(spec: TransferSet, root: Path, pieces: tuple[dict[str, Any], ...]) -> list[Any]:
    cls = getattr(tvd, spec.cls)
    return open_torchvision(lambda download: [cls(str(root), download=download, **spec.common, **kwargs)
                                              for kwargs in pieces], root, spec.label)


def _array_set(pieces: list[Any]) -> ImageSet:
    """SVHN and STL-10 ship decoded uint8 arrays: kept at their native size, like CIFAR."""
    images = np.concatenate([np.asarray(p.data, dtype=np.uint8) for p in pieces])
    labels = np.concatenate([np.asarray(p.labels, dtype=np.int64) for p in pieces])
    return ImageSet(torch.from_numpy(images).contiguous(), torch.from_numpy(labels))


def load_transfer(name: str, root: Path, options: dict[str, Any]) -> RawDataset:
    spec, opts = TRANSFER_SETS[name], parse_options(StoreOptions, name, options)
    train_pieces = _open(spec, root, spec.train)
    test_pieces = _open(spec, root, (spec.test,)) if spec.test is not None else []
    source = f"torchvision.datasets.{spec.cls}:{root}"
    if spec.cls in ("SVHN", "STL10"):
        train_set = _array_set(train_pieces)
        classes = _classes(train_pieces[0], train_set.labels)
        return RawDataset(train_set, _array_set(test_pieces), classes, source)
    where = str(root)
    pairs = [pair for piece in train_pieces for pair in _files(piece)]
    classes = _classes(train_pieces[0], torch.tensor([y for _, y in pairs]))
    train = FileList(tuple(f for f, _ in pairs), tuple(y for _, y in pairs), where)
    test = None
    if test_pieces:
        test_pairs = _files(test_pieces[0])
        test = FileList(tuple(f for f, _ in test_pairs), tuple(y for _, y in test_pairs), where)
    return decoded(train, test, classes, opts, source)


def _register(name: str, spec: TransferSet) -> None:
    split = (f"{spec.sizes[0]:,}/{spec.sizes[1]:,} train/test" if spec.test is not None
             else f"{spec.sizes[0]:,} images, no official split (test_fraction held out)")
    summary = f"{spec.label} (torchvision): {spec.classes} classes, {split}"

    def loader(root: Path, options: dict[str, Any]) -> RawDataset:
        return load_transfer(name, root, options)

    DATASETS.register(name, summary)(loader)


for _name, _spec in TRANSFER_SETS.items():
    _register(_name, _spec)

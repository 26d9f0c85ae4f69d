"""Your own images: `image_folder` (torchvision's ImageFolder layout) and `csv` (`path,label` rows).

Both decode once to a stored size and cache the uint8 split (`data/images.py`). Class names come
from the folders or the labels, sorted. With one folder (or one csv) the test split is a fixed,
stratified `test_fraction` of each class, the same for every case seed.
"""
from __future__ import annotations

import csv
import hashlib
from pathlib import Path
from typing import Any, Optional

import torch
from pydantic import BaseModel, ConfigDict, Field, PositiveInt, ValidationError
from torchvision.datasets.folder import find_classes

from ..errors import ConfigError, short_repr
from .images import (
    FileList,
    StoreFormat,
    load_images,
    read_set,
    split_digest,
    warn_skipped,
    write_set,
)
from .registry import DATASETS
from .types import ImageSet, RawDataset

HOLDOUT_SEED = 0  # the single-folder test split never depends on the case seed


class StoreOptions(BaseModel):
    """Options of every dataset decoded from image files."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    test_fraction: float = Field(0.2, gt=0.0, lt=1.0)  # no official test split: held-out share per class
    size: PositiveInt = 256  # stored side, in pixels
    crop: bool = True  # shorter side to `size`, centre square; false: squash the whole image

    @property
    def format(self) -> StoreFormat:
        return StoreFormat(self.size, self.crop)


class CsvOptions(StoreOptions):
    train: Optional[str] = None  # the training rows (with `test`), relative to the dataset's root
    test: Optional[str] = None
    file: Optional[str] = None  # all rows, split by test_fraction


def parse_options(model: type[StoreOptions], dataset: str, options: dict[str, Any]) -> Any:
    try:
        return model.model_validate(options)
    except ValidationError as err:
        first = err.errors()[0]
        key = ".".join(map(str, first["loc"]))
        raise ConfigError(f"dataset {dataset}: option {key} {short_repr(first.get('input'))} is invalid "
                          f"({first['msg'].lower()}); allowed options: {', '.join(model.model_fields)}") from None


def _class_files(folder: Path, classes: list[str], index: dict[str, int]) -> FileList:
    files, labels = [], []
    for name in classes:
        found = sorted(p for p in (folder / name).rglob("*") if p.is_file() and not p.name.startswith("."))
        if not found:
            raise ConfigError(f"class folder {folder / name} is empty; add images to it or remove it")
        files.extend(found)
        labels.extend([index[name]] * len(found))
    return FileList(tuple(files), tuple(labels), str(folder), "class folder {where}/{name}")


def _classes_in(folder: Path) -> list[str]:
    try:
        return find_classes(str(folder))[0]
    except (FileNotFoundError, NotADirectoryError):
        return []


def holdout(images: ImageSet, fraction: float) -> tuple[ImageSet, ImageSet]:
    """A stratified, seed-independent test share of each class (of the images that decoded)."""
    generator = torch.Generator().manual_seed(HOLDOUT_SEED)
    is_test = torch.zeros(len(images), dtype=torch.bool)
    for label in images.labels.unique().tolist():
        members = (images.labels == label).nonzero().flatten()
        members = members[torch.randperm(len(members), generator=generator)]
        if len(members) > 1:  # a class of one image stays in training
            is_test[members[: max(1, round(fraction * len(members)))]] = True
    return images.subset(~is_test), images.subset(is_test)


def _folder_splits(root: Path) -> tuple[FileList, FileList, list[str]]:
    if (root / "train").is_dir() and (root / "test").is_dir():
        classes = _classes_in(root / "train")
        unknown = sorted(set(_classes_in(root / "test")) - set(classes))
        if unknown:
            raise ConfigError(f"image_folder {root}: test/ has class folder(s) {unknown[:5]} that train/ lacks; "
                              "give both splits the same classes")
        index = {name: i for i, name in enumerate(classes)}
        test_classes = [c for c in classes if (root / "test" / c).is_dir()]
        return _class_files(root / "train", classes, index), _class_files(root / "test", test_classes, index), classes
    classes = _classes_in(root)
    return _class_files(root, classes, {name: i for i, name in enumerate(classes)}), None, classes  # type: ignore[return-value]


@DATASETS.register("image_folder", "your images: root/<class>/* (or root/train/<class>/* and root/test/<class>/*)")
def image_folder(root: Path, options: dict[str, Any]) -> RawDataset:
    opts = parse_options(StoreOptions, "image_folder", options)
    train, test, classes = _folder_splits(root)
    if not classes:
        raise ConfigError(f"image_folder found no class folders in {str(root)!r}; set the dataset's `root:` to a "
                          "folder of <class>/<image> files (or train/ and test/ folders of them)")
    return decoded(train, test, tuple(classes), opts, f"image_folder:{root}")


def decoded(train: FileList, test: Optional[FileList], classes: tuple[str, ...], opts: StoreOptions,
            source: str) -> RawDataset:
    """Both splits decoded (cached); without a test list, a stratified holdout of the training one."""
    if test is None:
        (train_set, test_set), digests = _held_out(train, classes, opts)
    else:
        (train_set, train_digest, _), (test_set, test_digest, _) = (load_images(s, opts.format, classes)
                                                                      for s in (train, test))
        digests = {"train": train_digest, "test": test_digest}
    return RawDataset(train_set, test_set, classes, source, digests)  # file digests: no pass over the pixels


def _held_out(files: FileList, classes: tuple[str, ...], opts: StoreOptions) -> tuple[tuple[ImageSet, ImageSet], dict[str, str]]:
    """The holdout's two parts, each cached (memory-mapped) on its own, so a warm load copies nothing."""
    base = f"{split_digest(files, opts.format)}|holdout|{opts.test_fraction}"
    keys = {part: _short_hash(f"{base}|{part}") for part in ("train", "test")}
    cached = [read_set(keys[part]) for part in ("train", "test")]
    if cached[0] is None or cached[1] is None:
        everything, _, skipped = load_images(files, opts.format, classes)  # warns about skipped files itself
        parts = dict(zip(("train", "test"), holdout(everything, opts.test_fraction)))
        stored = all([write_set(keys[p], ImageSet(s.images.contiguous(), s.labels), skipped) for p, s in parts.items()])
        cached = [read_set(keys[p]) for p in parts] if stored else [(parts["train"], []), (parts["test"], [])]
    else:
        warn_skipped(cached[0][1], files.where)
    assert cached[0] is not None and cached[1] is not None
    return (cached[0][0], cached[1][0]), keys


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _read_rows(file: Path) -> list[tuple[Path, str]]:
    try:
        with open(file, newline="", encoding="utf-8") as fh:
            rows = [row for row in csv.reader(fh) if row and not row[0].startswith("#")]
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"csv dataset: cannot read {str(file)!r} ({getattr(err, 'strerror', None) or err}); "
                          "check the `train`/`test`/`file` option") from None
    if rows and [c.strip().lower() for c in rows[0][:2]] == ["path", "label"]:
        rows = rows[1:]  # a header
    bad = next((n for n, row in enumerate(rows, 1) if len(row) < 2 or not row[1].strip()), None)
    if bad is not None:
        raise ConfigError(f"csv dataset {file}: row {bad} is not `path,label`; fix or remove it")
    return [((file.parent / row[0].strip()), row[1].strip()) for row in rows]


@DATASETS.register("csv", "your images listed as path,label rows (options: train+test, or file+test_fraction)")
def csv_dataset(root: Path, options: dict[str, Any]) -> RawDataset:
    opts = parse_options(CsvOptions, "csv", options)
    if not (opts.file or (opts.train and opts.test)) or (opts.file and (opts.train or opts.test)):
        raise ConfigError("csv dataset needs either options `train` and `test` (two csv files) or `file` "
                          "(one, split by test_fraction), relative to the dataset's `root:`")
    names = [opts.file] if opts.file else [opts.train, opts.test]
    tables = [_read_rows(root / name) for name in names]  # type: ignore[operator]
    classes = tuple(sorted({label for table in tables for _, label in table}))
    index = {name: i for i, name in enumerate(classes)}
    lists = [FileList(tuple(p for p, _ in t), tuple(index[y] for _, y in t), str(root / n), "{where}: label {name!r}")
             for t, n in zip(tables, names)]
    return decoded(lists[0], None if opts.file else lists[1], classes, opts, f"csv:{root / names[0]}")

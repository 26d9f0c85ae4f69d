"""Image files decoded once: resized to a stored size, uint8, cached per split under a content digest.

The digest covers each file's path, size, modification time and label, and the stored format, so
a second run reads one cache file and decodes nothing, and any change to the files decodes again.
Files that are corrupt, unreadable or not images are skipped with one warning naming them.
"""
from __future__ import annotations

import hashlib
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from PIL import Image, ImageOps

from ..errors import ConfigError, SftbenchWarning, first_sentence
from ..paths import cache_dir
from .types import ImageSet

CACHE_VERSION = 2  # 2: pixels in a memory-mapped .npy beside the .pt
MAX_NAMED = 10  # skipped files named in the warning; the rest are counted


@dataclass(frozen=True)
class StoreFormat:
    """How decoded images are stored: `size` x `size` pixels, RGB.

    `crop`: scale the shorter side to `size`, then take the centre square (torchvision's
    Resize + CenterCrop); otherwise squash the whole image to the square."""

    size: int = 256
    crop: bool = True


@dataclass(frozen=True)
class FileList:
    """One split's files and their class indices; `where` names it in messages."""

    files: tuple[Path, ...]
    labels: tuple[int, ...]
    where: str
    class_place: str = "{where}: class {name!r}"  # how to name one class's source in an error


def load_images(split: FileList, fmt: StoreFormat, classes: tuple[str, ...]) -> tuple[ImageSet, str, list[str]]:
    """The split as uint8 (N, 3, size, size), from the cache when its digest matches, that digest,
    and the files skipped as unreadable.

    The pixels are memory-mapped from the cache (copy-on-write): a warm load reads only what is
    used, and the workers of a pool share the pages."""
    digest = split_digest(split, fmt)
    cached = read_set(digest)
    if cached is None:
        decoded = _decode_all(split, fmt)
        fresh = ImageSet(decoded["images"], decoded["labels"])
        cached = (write_set(digest, fresh, decoded["skipped"]) and read_set(digest)) or (fresh, decoded["skipped"])
    images, skipped = cached
    warn_skipped(skipped, split.where)
    _check_classes_kept(images.labels, split, classes)
    return images, digest, skipped


def split_digest(split: FileList, fmt: StoreFormat) -> str:
    h = hashlib.sha256(f"v{CACHE_VERSION}|{fmt.size}|{fmt.crop}".encode())
    for file, label in zip(split.files, split.labels):
        try:
            stat = file.stat()
            stamp = f"{stat.st_size}|{stat.st_mtime_ns}"
        except OSError:
            stamp = "missing"
        h.update(f"{file.resolve()}|{stamp}|{label}\n".encode())
    return h.hexdigest()[:24]


def _decode_one(file: Path, fmt: StoreFormat) -> np.ndarray:
    with Image.open(file) as image:
        image.draft("RGB", (fmt.size, fmt.size))  # JPEG: decode at a reduced scale, still >= size
        image = image.convert("RGB")
        if fmt.crop:
            image = ImageOps.fit(image, (fmt.size, fmt.size), Image.Resampling.BILINEAR)
        else:
            image = image.resize((fmt.size, fmt.size), Image.Resampling.BILINEAR)
        return np.asarray(image, dtype=np.uint8)


def _decode_or_reason(file: Path, fmt: StoreFormat) -> tuple[Optional[np.ndarray], str]:
    try:
        return _decode_one(file, fmt), ""
    except Exception as err:  # PIL raises many types for damaged files; each only costs that file
        return None, first_sentence(err, with_type=True)


def _decode_all(split: FileList, fmt: StoreFormat) -> dict:
    """Decoded in threads (PIL releases the GIL while decoding and resizing)."""
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        decoded = list(pool.map(lambda f: _decode_or_reason(f, fmt), split.files))
    kept = [i for i, (array, _) in enumerate(decoded) if array is not None]
    images = np.stack([decoded[i][0] for i in kept]) if kept else np.zeros((0, fmt.size, fmt.size, 3), np.uint8)
    return {
        "images": torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(),
        "labels": torch.tensor([split.labels[i] for i in kept], dtype=torch.long),
        "skipped": [_skipped(file, reason, split.where) for file, (array, reason) in zip(split.files, decoded)
                    if array is None],
    }


def _skipped(file: Path, reason: str, where: str) -> str:
    name = str(file.relative_to(where)) if file.is_relative_to(where) else str(file)
    return f"{name} ({reason.replace(str(file), name)})"


def warn_skipped(skipped: list[str], where: str) -> None:
    if not skipped:
        return
    named = "; ".join(skipped[:MAX_NAMED])
    more = f"; and {len(skipped) - MAX_NAMED} more" if len(skipped) > MAX_NAMED else ""
    warnings.warn(SftbenchWarning(f"{where}: skipped {len(skipped)} file(s) that are not readable images: "
                                  f"{named}{more}"), stacklevel=3)


def _check_classes_kept(labels: torch.Tensor, split: FileList, classes: tuple[str, ...]) -> None:
    empty = sorted(set(split.labels) - set(labels.tolist()))
    if empty:
        place = split.class_place.format(where=split.where, name=classes[empty[0]])
        raise ConfigError(f"{place} has no readable image left; add images to it or remove it")


def read_set(key: str) -> Optional[tuple[ImageSet, list[str]]]:
    """A cached set (pixels memory-mapped) and the files skipped when it was decoded; None if absent.

    `KEY.pt` holds labels and skipped files, `KEY.npy` the pixels; the .pt is written last."""
    path = cache_dir() / "images" / key
    meta, pixels = path.with_suffix(".pt"), path.with_suffix(".npy")
    if not meta.exists():
        return None
    try:
        cached = torch.load(meta, weights_only=True)
        images = np.load(pixels, mmap_mode="c")
        if images.shape[0] != len(cached["labels"]):
            raise ValueError(f"{images.shape[0]} images for {len(cached['labels'])} labels")
    except Exception as err:  # a damaged cache costs one decode, never the run
        warnings.warn(SftbenchWarning(f"image cache {meta} is damaged ({first_sentence(err, True)}); "
                                      "decoding the images again"), stacklevel=3)
        return None
    return ImageSet(torch.from_numpy(images), cached["labels"]), cached["skipped"]


def write_set(key: str, images: ImageSet, skipped: list[str]) -> bool:
    """Cache a set; False (with a warning) when it cannot be written: the run goes on uncached."""
    path = cache_dir() / "images" / key
    tmp, meta = path.with_suffix(f".{os.getpid()}.tmp.npy"), path.with_suffix(f".{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(tmp, images.images.numpy())
        tmp.replace(path.with_suffix(".npy"))  # atomic: a reader sees the whole file or none
        torch.save({"labels": images.labels.clone(), "skipped": skipped}, meta)
        meta.replace(path.with_suffix(".pt"))
    except (OSError, RuntimeError) as err:  # a full disk: torch.save says RuntimeError
        tmp.unlink(missing_ok=True)
        meta.unlink(missing_ok=True)
        warnings.warn(SftbenchWarning(f"could not write the image cache {path} ({first_sentence(err, True)}); "
                                      "going on without it; free disk space under $SFTBENCH_CACHE"), stacklevel=3)
        return False
    return True

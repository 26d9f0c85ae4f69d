"""Tiny fakes of the torchvision transfer datasets, each in its dataset's own on-disk layout.

Every fake has CLASSES classes, TRAIN images per class in the training pool and TEST per class in
the test split (EuroSAT and Caltech-101 have no split: TRAIN + TEST per class in one folder).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import scipy.io
from PIL import Image

CLASSES, TRAIN, TEST = 3, 4, 2
NAMES = ["alpha", "beta", "gamma"]


def image(path: Path, label: int, index: int, size: int = 12) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(label * 1000 + index)
    pixels = (rng.random((size, size + 4, 3)) * 60 + label * 80).astype(np.uint8)
    Image.fromarray(pixels).save(path, format="PPM" if path.suffix == ".ppm" else "JPEG")


def per_split(train: int = TRAIN, test: int = TEST):
    """(split, class, index) for the training pool then the test split."""
    for split, count in (("train", train), ("test", test)):
        for label in range(CLASSES):
            for i in range(count):
                yield split, label, i


def flowers102(root: Path) -> None:
    base, ids = root / "flowers-102", {"trnid": [], "valid": [], "tstid": []}
    labels = []
    for n, (split, label, i) in enumerate(per_split(), 1):
        image(base / "jpg" / f"image_{n:05d}.jpg", label, i)
        labels.append(label + 1)
        ids["tstid" if split == "test" else ("trnid" if i % 2 else "valid")].append(n)
    scipy.io.savemat(base / "setid.mat", {k: np.array(v) for k, v in ids.items()})
    scipy.io.savemat(base / "imagelabels.mat", {"labels": np.array(labels)})


def oxford_pets(root: Path) -> None:
    base = root / "oxford-iiit-pet"
    (base / "annotations" / "trimaps").mkdir(parents=True)
    lines = {"train": [], "test": []}
    for split, label, i in per_split():
        name = f"{NAMES[label]}_{split}{i}"
        image(base / "images" / f"{name}.jpg", label, i)
        lines[split].append(f"{name} {label + 1} 1 1")
    (base / "annotations" / "trainval.txt").write_text("\n".join(lines["train"]) + "\n")
    (base / "annotations" / "test.txt").write_text("\n".join(lines["test"]) + "\n")


def dtd(root: Path) -> None:
    data = root / "dtd" / "dtd"
    lines = {"train": [], "val": [], "test": []}
    for split, label, i in per_split():
        name = f"{NAMES[label]}_{split}{i}.jpg"
        image(data / "images" / NAMES[label] / name, label, i)
        lines["test" if split == "test" else ("train" if i % 2 else "val")].append(f"{NAMES[label]}/{name}")
    (data / "labels").mkdir(parents=True)
    for split, rows in lines.items():
        (data / "labels" / f"{split}1.txt").write_text("\n".join(rows) + "\n")


def fgvc_aircraft(root: Path) -> None:
    data = root / "fgvc-aircraft-2013b" / "data"
    lines = {"train": [], "test": []}
    for split, label, i in per_split():
        name = f"{label}{split}{i}"
        image(data / "images" / f"{name}.jpg", label, i)
        lines[split].append(f"{name} {NAMES[label]}")
    (data / "variants.txt").write_text("\n".join(NAMES) + "\n")
    (data / "images_variant_trainval.txt").write_text("\n".join(lines["train"]) + "\n")
    (data / "images_variant_test.txt").write_text("\n".join(lines["test"]) + "\n")


def stanford_cars(root: Path) -> None:
    base = root / "stanford_cars"
    annotations = {"train": [], "test": []}
    for split, label, i in per_split():
        name = f"{label}{split}{i}.jpg"
        image(base / f"cars_{split}" / name, label, i)
        annotations[split].append((name, label + 1))
    (base / "devkit").mkdir(parents=True)

    def annos(rows):
        table = np.zeros(len(rows), dtype=[("fname", object), ("class", np.uint8)])
        table["fname"], table["class"] = [r[0] for r in rows], [r[1] for r in rows]
        return {"annotations": table}

    scipy.io.savemat(base / "devkit" / "cars_train_annos.mat", annos(annotations["train"]))
    scipy.io.savemat(base / "cars_test_annos_withlabels.mat", annos(annotations["test"]))
    scipy.io.savemat(base / "devkit" / "cars_meta.mat", {"class_names": np.array(NAMES, dtype=object)})


def food101(root: Path) -> None:
    base = root / "food-101"
    meta = {"train": {n: [] for n in NAMES}, "test": {n: [] for n in NAMES}}
    for split, label, i in per_split():
        name = f"{split}{i}"
        image(base / "images" / NAMES[label] / f"{name}.jpg", label, i)
        meta[split][NAMES[label]].append(f"{NAMES[label]}/{name}")
    (base / "meta").mkdir(parents=True)
    for split, rows in meta.items():
        (base / "meta" / f"{split}.json").write_text(json.dumps(rows))


def svhn(root: Path) -> None:
    for split, count in (("train", TRAIN), ("test", TEST)):
        labels = np.repeat(np.arange(CLASSES), count)
        pixels = np.random.default_rng(0).integers(0, 255, (32, 32, 3, len(labels)), dtype=np.uint8)
        scipy.io.savemat(root / f"{split}_32x32.mat", {"X": pixels, "y": np.where(labels == 0, 10, labels)[:, None]})


def stl10(root: Path) -> None:
    base = root / "stl10_binary"
    base.mkdir(parents=True)
    for split, count in (("train", TRAIN), ("test", TEST)):
        labels = np.repeat(np.arange(CLASSES), count).astype(np.uint8) + 1
        np.random.default_rng(0).integers(0, 255, len(labels) * 3 * 96 * 96, dtype=np.uint8).tofile(base / f"{split}_X.bin")
        labels.tofile(base / f"{split}_y.bin")
    (base / "class_names.txt").write_text("\n".join(NAMES) + "\n")


def eurosat(root: Path) -> None:
    for _, label, i in per_split(TRAIN + TEST, 0):
        image(root / "eurosat" / "2750" / NAMES[label] / f"{NAMES[label]}_{i}.jpg", label, i)


def caltech101(root: Path) -> None:
    base = root / "caltech101" / "101_ObjectCategories"
    for _, label, i in per_split(TRAIN + TEST, 0):
        image(base / NAMES[label] / f"image_{i + 1:04d}.jpg", label, i)
    image(base / "BACKGROUND_Google" / "image_0001.jpg", 0, 0)  # torchvision leaves this out


def gtsrb(root: Path) -> None:
    base = root / "gtsrb"
    rows = ["Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId"]
    for split, label, i in per_split():
        if split == "train":
            image(base / "GTSRB" / "Training" / f"{label:05d}" / f"{i:05d}.ppm", label, i)
        else:
            name = f"{label}{i:04d}.ppm"
            image(base / "GTSRB" / "Final_Test" / "Images" / name, label, i)
            rows.append(f"{name};12;16;0;0;12;16;{label}")
    (base / "GT-final_test.csv").write_text("\n".join(rows) + "\n")


FAKES = {"flowers102": flowers102, "oxford_pets": oxford_pets, "dtd": dtd, "fgvc_aircraft": fgvc_aircraft,
         "stanford_cars": stanford_cars, "food101": food101, "svhn": svhn, "stl10": stl10, "eurosat": eurosat,
         "caltech101": caltech101, "gtsrb": gtsrb}

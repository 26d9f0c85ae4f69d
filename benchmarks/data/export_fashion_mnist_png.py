"""Write real Fashion-MNIST images as PNG files in torchvision's ImageFolder layout, offline.

The images come from Debian's `dataset-fashion-mnist` package (read through sftbench's loader),
so `benchmarks/transfer_offline.yaml` exercises the `image_folder` path on real pixels:

    python benchmarks/data/export_fashion_mnist_png.py            # -> benchmarks/data/fashion_png/
    python benchmarks/data/export_fashion_mnist_png.py --out DIR --train-per-class 200 --test-per-class 100

It writes OUT/train/<class>/<n>.png and OUT/test/<class>/<n>.png: the first N images of each
class from the official training and test splits. Existing files are kept (a rerun is cheap).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image

from sftbench.data.splits import load_raw
from sftbench.schema import DatasetSpec

HERE = Path(__file__).resolve().parent


def export(images, labels, classes, folder: Path, per_class: int) -> int:
    written = {name: 0 for name in classes}
    for index, label in enumerate(labels.tolist()):
        name = classes[label].replace("/", "-")  # "T-shirt/top" is not a folder name
        if written[classes[label]] >= per_class:
            continue
        target = folder / name / f"{index:05d}.png"
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(images[index, 0].numpy()).save(target)
        written[classes[label]] += 1
    return sum(written.values())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=HERE / "fashion_png")
    p.add_argument("--train-per-class", type=int, default=200)
    p.add_argument("--test-per-class", type=int, default=100)
    args = p.parse_args()
    raw = load_raw(DatasetSpec(name="fashion_mnist"))
    for split, part, count in (("train", raw.train, args.train_per_class), ("test", raw.test, args.test_per_class)):
        n = export(part.images, part.labels, raw.classes, args.out / split, count)
        print(f"{split}: {n} PNG files in {args.out / split}")


if __name__ == "__main__":
    main()

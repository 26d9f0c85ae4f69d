"""`image_folder`: first-run decode, warm-cache load, and train throughput from the cached uint8
images vs torchvision's ImageFolder + DataLoader (2 workers, the usual transforms) on the same
JPEG files and model.

The folder is generated first (not timed): N real Fashion-MNIST images, upscaled to 256 px RGB
and saved as JPEG (quality 90) into root/<class>/.

    python benchmarks/perf/image_folder_cache.py [--images 5000] [--size 128] [--steps 20]
"""
from __future__ import annotations

import itertools
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch
from _common import interleave, parser, report, timed
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader
from torchvision import datasets
from torchvision import transforms as T

from sftbench.backbones.factory import build_backbone
from sftbench.data.datasets import DATASETS
from sftbench.data.pipeline import BatchPipeline, Preprocessing
from sftbench.data.splits import load_raw
from sftbench.schema import BackboneSpec, DatasetSpec


def generate(root: Path, count: int) -> None:
    raw = load_raw(DatasetSpec(name="fashion_mnist"))
    for i in range(count):
        label = int(raw.train.labels[i])
        folder = root / f"class{label}"
        folder.mkdir(parents=True, exist_ok=True)
        pixels = raw.train.images[i, 0].numpy()
        Image.fromarray(pixels).convert("RGB").resize((256, 256), Image.Resampling.BICUBIC).save(
            folder / f"{i:05d}.jpg", quality=90)


def load_seconds(root: Path, cache: Path, touch: bool = False) -> float:
    """Seconds to load the dataset; with `touch`, also to read every pixel once (the memory-mapped
    cache defers that read to first use)."""
    os.environ["SFTBENCH_CACHE"] = str(cache)
    start = time.perf_counter()
    raw = DATASETS.get("image_folder").factory(root, {"size": 256, "test_fraction": 0.2})
    if touch:
        raw.train.images.clone(), raw.test.images.clone()  # a copy reads every page
    return time.perf_counter() - start


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--images", type=int, default=5000)
    p.add_argument("--size", type=int, default=128, help="training input size")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--arch", default="tf_efficientnet_lite0")
    args = p.parse_args()
    device = torch.device(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "images"
        generate(root, args.images)
        cold = [load_seconds(root, Path(tmp) / f"cache{rep}") for rep in range(2)]  # a fresh cache each time
        warm = [load_seconds(root, Path(tmp) / "cache0") for _ in range(3)]
        touched = [load_seconds(root, Path(tmp) / "cache0", touch=True) for _ in range(3)]
        first, second, full = (statistics.median(x) for x in (cold, warm, touched))
        print(f"{args.images} JPEGs (256 px): first-run decode {first:.2f} s (median of {len(cold)}, fresh cache each)")
        print(f"  warm-cache load {second:.3f} s ({first / second:.0f}x faster); load + reading every pixel once "
              f"{full:.3f} s ({first / full:.1f}x)")
        train_throughput(args, root, device)


def train_throughput(args, root: Path, device: torch.device) -> None:
    raw = DATASETS.get("image_folder").factory(root, {"size": 256, "test_fraction": 0.2})
    backbone = build_backbone(BackboneSpec(name=args.arch, weights="random"), len(raw.classes))
    model, mean, std = backbone.model.to(device), backbone.mean, backbone.std
    pipe = BatchPipeline(Preprocessing(args.size, mean, std, "bilinear", augment="crop_flip"), device)
    train = pipe.to_device(raw.train)
    g = torch.Generator().manual_seed(0)
    recipe = T.Compose([T.RandomResizedCrop(args.size), T.RandomHorizontalFlip(), T.ToTensor(), T.Normalize(mean, std)])
    loader = DataLoader(datasets.ImageFolder(str(root), recipe), batch_size=args.batch, shuffle=True, num_workers=2,
                        persistent_workers=True, drop_last=True)
    opt, loss_fn = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9), nn.CrossEntropyLoss()

    def steps(batches) -> float:
        def run() -> int:
            model.train()
            for x, y in itertools.islice(batches(), args.steps):
                loss = loss_fn(model(x.to(device)), y.to(device))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            return args.steps * args.batch
        return timed(device, run)

    next(iter(loader))  # start the workers before timing
    results = interleave(max(2, args.reps // 2), {
        "ImageFolder + DataLoader(2 workers)": lambda: steps(lambda: iter(loader)),
        "sftbench cached uint8": lambda: steps(lambda: pipe.batches(train, args.batch, shuffle=True, generator=g,
                                                                    augment=True, drop_last=True)),
    })
    report(f"train throughput, {args.arch} @ {args.size}px, {args.steps} steps", results,
           "ImageFolder + DataLoader(2 workers)")


if __name__ == "__main__":
    main()

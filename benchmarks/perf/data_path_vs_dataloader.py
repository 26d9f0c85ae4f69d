"""sftbench's device data path vs the common recipe: PIL images, torchvision CPU transforms
(resize, random crop, flip, normalise) in a DataLoader with 2 workers.

Two numbers per path: data-only throughput (batches produced and moved to the device, no model)
and end-to-end train throughput on the same model and steps.

    python benchmarks/perf/data_path_vs_dataloader.py [--device cuda] [--arch resnet50 --size 224]
"""
from __future__ import annotations

import itertools

import torch
from _common import interleave, parser, report, timed
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms as T

from sftbench.backbones.factory import build_backbone
from sftbench.data.pipeline import BatchPipeline, Preprocessing
from sftbench.data.splits import load_raw, make_splits
from sftbench.schema import BackboneSpec, DatasetSpec


class PilDataset(Dataset):
    """What tutorials do: one PIL image per item, transformed on the CPU."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform: T.Compose):
        self.images = [Image.fromarray(im[0].numpy()).convert("RGB") for im in images]
        self.labels, self.transform = labels.tolist(), transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        return self.transform(self.images[i]), self.labels[i]


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--arch", default="tf_efficientnet_lite0")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args()
    device = torch.device(args.device)
    spec = DatasetSpec(name="mnist5k", val_fraction=0.0)
    splits = make_splits(load_raw(spec), spec, 0)
    backbone = build_backbone(BackboneSpec(name=args.arch, weights="random"), 10)
    model = backbone.model.to(device)
    mean, std = backbone.mean, backbone.std

    pipe = BatchPipeline(Preprocessing(args.size, mean, std, "bilinear", augment="crop_flip"), device)
    train = pipe.to_device(splits.train)
    g = torch.Generator(device=device if device.type == "cuda" else "cpu").manual_seed(0)
    recipe = T.Compose([T.Resize(args.size), T.RandomCrop(args.size, padding=args.size // 8, padding_mode="reflect"),
                        T.RandomHorizontalFlip(), T.ToTensor(), T.Normalize(mean, std)])
    loader = DataLoader(PilDataset(splits.train.images, splits.train.labels, recipe), batch_size=args.batch,
                        shuffle=True, num_workers=args.workers, pin_memory=device.type == "cuda",
                        persistent_workers=True, drop_last=True)
    n = args.steps * args.batch

    def device_batches():
        return pipe.batches(train, args.batch, shuffle=True, generator=g, augment=True, drop_last=True)

    def loader_batches():
        for x, y in loader:
            yield x.to(device, non_blocking=True), y.to(device, non_blocking=True)

    def data_only(make) -> float:
        def run() -> int:
            for x, _ in itertools.islice(make(), args.steps):
                x.sum()  # touch it
            return n
        return timed(device, run)

    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()

    def train_steps(make) -> float:
        def run() -> int:
            model.train()
            for x, y in itertools.islice(make(), args.steps):
                loss = loss_fn(model(x), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            return n
        return timed(device, run)

    next(iter(loader))  # start the workers before timing
    data = interleave(args.reps, {"CPU DataLoader recipe": lambda: data_only(loader_batches),
                                  "sftbench device path": lambda: data_only(device_batches)})
    report(f"data only (batches of {args.batch} at {args.size}px delivered to {device})", data, "CPU DataLoader recipe")
    steps = interleave(max(2, args.reps // 2), {"CPU DataLoader recipe": lambda: train_steps(loader_batches),
                                                "sftbench device path": lambda: train_steps(device_batches)})
    report(f"train throughput, {args.arch} @ {args.size}px, {args.steps} steps", steps, "CPU DataLoader recipe")


if __name__ == "__main__":
    main()

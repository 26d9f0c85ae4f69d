"""Full fine-tune train throughput: sftbench's fit() vs timm's train benchmark on the same settings.

timm's `benchmark.py` (TrainBenchmarkRunner) times forward, backward and an SGD step on a random
input tensor already at the model's size, on the device. sftbench's fit() does its real data path
on top (uint8 CIFAR-shaped images -> float, resize to --size, normalise, on the device). Each
contender is timed for at least --min-seconds of steady state after its warm-up.

    python benchmarks/perf/train_throughput.py --arch resnet50 --size 224 --batches 64,256 \\
        --modes eager,compiled --precision bf16 --channels-last --cudnn-benchmark
"""
from __future__ import annotations

import json
import time

import timm
import torch
from _common import min_seconds, parser, speed_args
from torch import nn

from sftbench.backbones.factory import build_backbone
from sftbench.data.pipeline import BatchPipeline, Preprocessing
from sftbench.data.types import ImageSet
from sftbench.engine.evaluate import autocast
from sftbench.engine.fit import FitConfig, FitData, fit
from sftbench.engine.timing import synchronize
from sftbench.schema import BackboneSpec, TrainSpec
from sftbench.strategies.lookup import build_strategy

WARMUP_STEPS = 3


def sftbench_fit(args, device: torch.device, batch: int, compiled: bool, steps: int) -> tuple[float, float]:
    """(samples/s, timed seconds) of fit() over `steps` steps of synthetic CIFAR-shaped data."""
    torch.compiler.reset()
    backbone = build_backbone(BackboneSpec(name=args.arch, weights="random"), 10)
    model = backbone.model.to(device)
    if args.channels_last:
        model.to(memory_format=torch.channels_last)
    g = torch.Generator().manual_seed(0)
    n = batch * steps
    data = ImageSet(torch.randint(0, 256, (n, 3, 32, 32), generator=g, dtype=torch.uint8).to(device),
                    (torch.arange(n) % 10).to(device))
    empty = ImageSet(data.images[:0], data.labels[:0])
    pipe = BatchPipeline(Preprocessing(args.size, backbone.mean, backbone.std, channels_last=args.channels_last), device)
    cfg = TrainSpec(epochs=1, batch_size=batch, optimizer={"lr": 0.01, "momentum": 0.9}, precision=args.precision,
                    channels_last=args.channels_last, deterministic=not args.cudnn_benchmark,
                    timing_warmup_steps=WARMUP_STEPS)
    forward = torch.compile(model, mode=args.compile or "default", dynamic=False) if compiled else None
    result = fit(backbone, build_strategy("full", {}), FitData(data, empty), pipe, FitConfig(cfg, 0, forward=forward))
    return result.train_samples_per_s or 0.0, result.timed_train_seconds


def timm_benchmark(args, device: torch.device, batch: int, compiled: bool, seconds: float) -> tuple[float, float]:
    """timm benchmark.py's train loop: the model built the way it builds it, random input, SGD."""
    torch.compiler.reset()
    model = timm.create_model(args.arch, num_classes=10).to(device).train()
    if args.channels_last:
        model.to(memory_format=torch.channels_last)
    forward = torch.compile(model, mode=args.compile or "default", dynamic=False) if compiled else model
    fmt = torch.channels_last if args.channels_last else torch.contiguous_format
    x = torch.randn(batch, 3, args.size, args.size, device=device).contiguous(memory_format=fmt)
    y = torch.randint(0, 10, (batch,), device=device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, **({"fused": True} if device.type == "cuda" else {}))
    loss_fn = nn.CrossEntropyLoss()

    def step() -> None:
        with autocast(device, args.precision):
            loss = loss_fn(forward(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(WARMUP_STEPS):
        step()
    synchronize(device)
    start, steps = time.perf_counter(), 0
    while steps < args.steps or time.perf_counter() - start < seconds:
        step()
        steps += 1
        if steps % 10 == 0:
            synchronize(device)
    synchronize(device)
    elapsed = time.perf_counter() - start
    return steps * batch / elapsed, elapsed


def main() -> None:
    p = speed_args(parser(__doc__))
    p.add_argument("--arch", default="resnet50")
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--batches", default="64,256")
    p.add_argument("--modes", default="eager,compiled")
    p.add_argument("--steps", type=int, default=20, help="fewest timed steps; more until --min-seconds")
    p.add_argument("--json", help="append one JSON line per measurement here")
    args = p.parse_args()
    device, seconds = torch.device(args.device), min_seconds(args)
    torch.backends.cudnn.benchmark = args.cudnn_benchmark
    for batch in map(int, args.batches.split(",")):
        for mode in args.modes.split(","):
            compiled = mode == "compiled"
            timm_rate, timm_s = timm_benchmark(args, device, batch, compiled, seconds)
            steps = max(args.steps, round(timm_rate * max(seconds, 0.001) / batch * 1.1)) + WARMUP_STEPS
            ours, ours_s = sftbench_fit(args, device, batch, compiled, steps)
            row = {"check": "train_throughput", "arch": args.arch, "size": args.size, "batch": batch, "mode": mode,
                   "precision": args.precision, "channels_last": args.channels_last, "device": str(device),
                   "sftbench_img_s": round(ours, 1), "sftbench_s": round(ours_s, 2), "timm_img_s": round(timm_rate, 1),
                   "timm_s": round(timm_s, 2), "ratio": round(ours / timm_rate, 3) if timm_rate else None}
            print(json.dumps(row), flush=True)
            if args.json:
                with open(args.json, "a") as fh:
                    fh.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()

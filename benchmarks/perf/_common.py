"""Shared helpers for the perf benchmarks: interleaved repetitions, medians, one table."""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable

import torch

from sftbench.engine.timing import synchronize


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--reps", type=int, default=5, help="interleaved repetitions; medians are reported")
    return p


def timed(device: torch.device, fn: Callable[[], int]) -> float:
    """samples/s of one call of fn (which returns the samples it processed), device-synchronised."""
    synchronize(device)
    start = time.perf_counter()
    samples = fn()
    synchronize(device)
    return samples / (time.perf_counter() - start)


def interleave(reps: int, contenders: dict[str, Callable[[], float]]) -> dict[str, list[float]]:
    """Run each contender once per repetition, alternating, so machine noise hits all alike."""
    results: dict[str, list[float]] = {name: [] for name in contenders}
    for rep in range(reps):
        order = list(contenders.items()) if rep % 2 == 0 else list(reversed(contenders.items()))
        for name, fn in order:
            results[name].append(fn())
    return results


def report(title: str, results: dict[str, list[float]], baseline: str, unit: str = "img/s") -> None:
    """Print medians and ratios; with $SFTBENCH_PERF_JSON set, also append them there as JSON lines."""
    medians = {name: statistics.median(v) for name, v in results.items()}
    if os.environ.get("SFTBENCH_PERF_JSON"):
        with open(os.environ["SFTBENCH_PERF_JSON"], "a") as fh:
            for name in results:
                fh.write(json.dumps({"check": title, "contender": name, "median": round(medians[name], 1),
                                     "unit": unit, "ratio": round(medians[name] / medians[baseline], 3)}) + "\n")
    print(f"\n{title}")
    for name, values in results.items():
        ratio = medians[name] / medians[baseline]
        spread = f"[{min(values):,.1f} .. {max(values):,.1f}]"
        print(f"  {name:<34} median {medians[name]:>10,.1f} {unit}  {spread:<24} ratio vs {baseline}: {ratio:.3f}")


def model_args(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument("--arch", default="tf_efficientnet_lite0")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=24)
    return speed_args(p)


def speed_args(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The settings users run on a GPU; every perf script takes them."""
    p.add_argument("--precision", choices=["fp32", "bf16", "fp16"], default="fp32")
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--cudnn-benchmark", action="store_true", help="cudnn.benchmark on (deterministic off)")
    p.add_argument("--compile", nargs="?", const="default", default=None, help="torch.compile mode")
    p.add_argument("--min-seconds", type=float, default=None,
                   help="time at least this much steady state (default: 5 on a GPU, 0 on the CPU)")
    return p


def min_seconds(args: argparse.Namespace) -> float:
    if args.min_seconds is not None:
        return args.min_seconds
    return 5.0 if str(args.device).startswith("cuda") else 0.0


def full_finetune_setup(args: argparse.Namespace, augment: str = "none"):
    """mnist5k on the device, a random-init backbone, and the sftbench fit() pieces for it."""
    from sftbench.backbones.factory import build_backbone
    from sftbench.data.pipeline import BatchPipeline, Preprocessing
    from sftbench.data.splits import load_raw, make_splits
    from sftbench.schema import BackboneSpec, DatasetSpec, TrainSpec
    from sftbench.strategies.lookup import build_strategy

    device = torch.device(args.device)
    spec = DatasetSpec(name="mnist5k", val_fraction=0.0, train_size=args.batch * args.steps)
    splits = make_splits(load_raw(spec), spec, 0)
    backbone = build_backbone(BackboneSpec(name=args.arch, weights="random"), 10)
    backbone.model.to(device)
    pipe = BatchPipeline(Preprocessing(args.size, backbone.mean, backbone.std, backbone.interpolation,
                                       augment=augment), device)
    cfg = TrainSpec(epochs=1, batch_size=args.batch, optimizer={"lr": 0.01}, max_steps_per_epoch=args.steps,
                    timing_warmup_steps=2, deterministic=not args.cudnn_benchmark, precision=args.precision,
                    channels_last=args.channels_last, compile=args.compile)
    return (device, backbone, pipe, pipe.to_device(splits.train), pipe.to_device(splits.val), cfg,
            build_strategy("full", {}))

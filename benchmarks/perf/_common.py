"""Shared helpers for the perf benchmarks: interleaved repetitions, medians, one table."""
from __future__ import annotations

import argparse
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
    medians = {name: statistics.median(v) for name, v in results.items()}
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
    return p


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
                    timing_warmup_steps=2, deterministic=False)
    return (device, backbone, pipe, pipe.to_device(splits.train), pipe.to_device(splits.val), cfg,
            build_strategy("full", {}))

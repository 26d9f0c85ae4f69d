"""Train throughput on real data through sftbench's data path vs the same model fed one fixed
synthetic tensor (no data path at all). Target: ratio >= 0.95 (data is never the bottleneck).

    python benchmarks/perf/real_vs_synthetic_input.py [--device cuda] [--arch resnet50 --size 224]
"""
from __future__ import annotations

import torch
from torch import nn

from _common import interleave, parser, report, timed
from sftbench.backbones import build_backbone
from sftbench.datasets import DatasetSpec, load_raw, make_splits
from sftbench.preprocess import BatchPipeline, Preprocessing
from sftbench.spec import BackboneSpec, TrainSpec
from sftbench.strategies import build_strategy
from sftbench.train import fit


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--arch", default="tf_efficientnet_lite0")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=24)
    p.add_argument("--augment", default="crop_flip")
    args = p.parse_args()
    device = torch.device(args.device)
    spec = DatasetSpec(name="mnist5k", val_fraction=0.0, train_size=args.batch * args.steps)
    splits = make_splits(load_raw(spec), spec, 0)
    backbone = build_backbone(BackboneSpec(name=args.arch, weights="random"), 10)
    model = backbone.model.to(device)
    pipe = BatchPipeline(Preprocessing(args.size, backbone.mean, backbone.std, backbone.interpolation,
                                       augment=args.augment), device)
    train, empty = pipe.to_device(splits.train), pipe.to_device(splits.val)
    cfg = TrainSpec(epochs=1, batch_size=args.batch, optimizer={"lr": 0.01}, max_steps_per_epoch=args.steps,
                    deterministic=False)
    strategy = build_strategy("full", {})
    x_fixed = torch.randn(args.batch, 3, args.size, args.size, device=device)
    y_fixed = torch.randint(0, 10, (args.batch,), device=device)

    def real() -> float:
        return fit(backbone, strategy, train, empty, pipe, cfg, seed=0).train_samples_per_s

    def synthetic() -> float:
        model.train()
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        loss_fn = nn.CrossEntropyLoss()

        def steps(k: int) -> int:
            for _ in range(k):
                loss = loss_fn(model(x_fixed), y_fixed)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            return k * args.batch

        steps(2)
        return timed(device, lambda: steps(args.steps - 2))

    results = interleave(args.reps, {"synthetic fixed tensor": synthetic, "real data (sftbench path)": real})
    report(f"train throughput, {args.arch} @ {args.size}px, augment {args.augment}, {device}", results,
           "synthetic fixed tensor")


if __name__ == "__main__":
    main()

"""Train throughput on real data through sftbench's data path vs the same model fed one fixed
synthetic tensor (no data path at all). Target: ratio >= 0.95 (data is never the bottleneck).

    python benchmarks/perf/real_vs_synthetic_input.py [--device cuda] [--arch resnet50 --size 224]
"""
from __future__ import annotations

import torch
from _common import full_finetune_setup, interleave, model_args, parser, report, timed
from torch import nn

from sftbench.engine.fit import FitConfig, FitData, fit


def main() -> None:
    p = model_args(parser(__doc__))
    p.add_argument("--augment", default="crop_flip")
    args = p.parse_args()
    device, backbone, pipe, train, empty, cfg, strategy = full_finetune_setup(args, args.augment)
    model = backbone.model
    x_fixed = torch.randn(args.batch, 3, args.size, args.size, device=device)
    y_fixed = torch.randint(0, 10, (args.batch,), device=device)

    def real() -> float:
        return fit(backbone, strategy, FitData(train, empty), pipe, FitConfig(cfg, seed=0)).train_samples_per_s

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

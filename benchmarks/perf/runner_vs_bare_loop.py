"""sftbench's fit loop vs a bare hand-written PyTorch loop: same model, data and steps.

The bare loop gets the most favourable setup: images preprocessed once to float tensors at the
target size, on the device; it only indexes a random batch, runs forward/backward/step. sftbench
does its real per-batch work (uint8 -> float, resize, normalise) plus its bookkeeping.
Target: sftbench >= 0.97x the bare loop's train throughput.

    python benchmarks/perf/runner_vs_bare_loop.py [--device cuda] [--arch resnet50 --size 224]
"""
from __future__ import annotations

import torch
from _common import full_finetune_setup, interleave, model_args, parser, report, timed
from torch import nn

from sftbench.engine.fit import FitConfig, FitData, fit


def main() -> None:
    args = model_args(parser(__doc__)).parse_args()
    device, backbone, pipe, train, empty, cfg, strategy = full_finetune_setup(args)
    model = backbone.model

    def sftbench_fit() -> float:
        return fit(backbone, strategy, FitData(train, empty), pipe, FitConfig(cfg, seed=0)).train_samples_per_s

    x_all = torch.cat([x for x, _ in pipe.batches(train, 256, shuffle=False)])  # preprocessed once
    y_all = train.labels

    def bare_loop() -> float:
        model.train()
        for p_ in model.parameters():
            p_.requires_grad_(True)
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        loss_fn = nn.CrossEntropyLoss()
        order = torch.randperm(len(y_all), device=device)

        def steps(lo: int, hi: int) -> int:
            for s in range(lo, hi):
                idx = order[s * args.batch:(s + 1) * args.batch]
                loss = loss_fn(model(x_all[idx]), y_all[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            return (hi - lo) * args.batch

        steps(0, 2)  # the same warm-up steps sftbench leaves out
        return timed(device, lambda: steps(2, args.steps))

    results = interleave(args.reps, {"bare PyTorch loop": bare_loop, "sftbench fit()": sftbench_fit})
    report(f"train throughput, {args.arch} @ {args.size}px, batch {args.batch}, {args.steps} steps, {device}",
           results, "bare PyTorch loop")


if __name__ == "__main__":
    main()

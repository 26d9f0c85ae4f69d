"""Write a 1-epoch smoke version of benchmarks/cifar10.yaml on synthetic CIFAR-shaped data.

Same backbones, strategies, precision, channels_last, compile and overrides as the reference
suite; the dataset becomes seeded synthetic 32x32 images in 10 classes and the weights random, so
it runs on a GPU box with no network and no cached data.

    python benchmarks/gpu_smoke_suite.py OUT.yaml [--tiny]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import yaml

REFERENCE = Path(__file__).with_name("cifar10.yaml")


def smoke(tiny: bool) -> dict:
    suite = yaml.safe_load(REFERENCE.read_text())
    suite["name"] = "cifar10-smoke"
    suite["requires_gpu"] = False
    sizes = {"train": 64, "test": 32} if tiny else {"train": 10000, "test": 2000}
    dataset = suite["matrix"]["datasets"][0]
    dataset.update(name="synthetic", options={"classes": 10, "size": 32, **sizes})
    backbones = suite["matrix"]["backbones"]
    suite["matrix"]["backbones"] = [{"name": b, "weights": "random", "id": b} if isinstance(b, str)
                                    else {**b, "weights": "random"} for b in backbones]
    defaults = suite["defaults"]
    defaults.update(epochs=1, seeds=[0])
    if tiny:  # the CPU mode CI runs: small images, no compile (inductor on 2 CPU cores takes minutes)
        defaults.update(image_size=32, batch_size=8, eval_batch_size=16, precision="fp32", compile=None)
        for backbone in suite["matrix"]["backbones"]:
            if backbone["name"].startswith("vit_"):
                backbone["kwargs"] = {"img_size": 32}  # 2x2 patches of 16 px
        for override in suite.get("overrides", []):
            override["set"].pop("compile", None)
    return suite


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("out", type=Path)
    p.add_argument("--tiny", action="store_true")
    args = p.parse_args()
    args.out.write_text(yaml.safe_dump(smoke(args.tiny), sort_keys=False))


if __name__ == "__main__":
    main()

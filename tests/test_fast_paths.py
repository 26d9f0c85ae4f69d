"""Correctness of the fast paths (speed itself is measured in benchmarks/perf, not here)."""
from __future__ import annotations

import pytest
import torch

from sftbench.backbones.factory import build_backbone
from sftbench.data.features import FeatureCache
from sftbench.errors import SftbenchWarning
from sftbench.data.pipeline import (
    BatchPipeline,
    Preprocessing,
    random_crop,
    random_flip,
)
from sftbench.data.types import ImageSet
from sftbench.engine.evaluate import autocast
from sftbench.engine.runner import RunOptions, run_case
from sftbench.schema import BackboneSpec
from sftbench.suite.cases import expand
from sftbench.suite.loader import parse_suite

CPU = RunOptions(torch.device("cpu"))


def crop_offsets(crops: torch.Tensor, size: int, pad: int) -> list[tuple[int, int]]:
    """Recover (dy, dx) of each crop of an image whose pixel (r, c) holds r * 1000 + c (reflect-padded)."""
    offsets = []
    for crop in crops:
        # the centre pixel of the crop is never a reflected one for pad < size / 2
        r, c = divmod(int(crop[0, size // 2, size // 2]), 1000)
        offsets.append((r - size // 2 + pad, c - size // 2 + pad))
    return offsets


def test_device_crops_and_flips_match_torchvision_distribution():
    from torchvision.transforms import v2

    size, pad, n = 32, 4, 3000
    image = (torch.arange(size)[:, None] * 1000 + torch.arange(size)[None, :]).float()[None].expand(3, -1, -1)
    ours = random_crop(image[None].expand(n, -1, -1, -1).contiguous(), torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    crop = v2.RandomCrop(size, padding=pad, padding_mode="reflect")
    theirs = torch.stack([crop(image) for _ in range(n)])

    def histogram(offsets):
        counts = torch.zeros(2 * pad + 1, 2 * pad + 1)
        for dy, dx in offsets:
            counts[dy, dx] += 1
        return counts / len(offsets)

    h_ours, h_theirs = histogram(crop_offsets(ours, size, pad)), histogram(crop_offsets(theirs, size, pad))
    assert (h_ours > 0).all() and (h_theirs > 0).all()  # every offset in [0, 2 * pad] occurs in both
    assert torch.allclose(h_ours.sum(0), h_theirs.sum(0), atol=0.03)  # column offsets: uniform in both
    assert torch.allclose(h_ours.sum(1), h_theirs.sum(1), atol=0.03)
    flipped = random_flip(torch.zeros(n, 1, 1, 2) + torch.tensor([0.0, 1.0]), torch.Generator().manual_seed(1))
    assert abs(float((flipped[:, 0, 0, 0] == 1).float().mean()) - 0.5) < 0.03  # torchvision: p = 0.5


def _cache(model_name="test_efficientnet", image_size=32, tmp=None, seed=0):
    torch.manual_seed(seed)
    b = build_backbone(BackboneSpec(name=model_name, weights="random"), 3)
    pipe = BatchPipeline(Preprocessing(image_size, b.mean, b.std), torch.device("cpu"))
    head = b.model.get_submodule(b.head_module)
    return b, FeatureCache(b.model, head, b.head_names, pipe, lambda: autocast(torch.device("cpu"), "fp32"), root=tmp,
                           batch=5)


def _images(n=20):
    g = torch.Generator().manual_seed(3)
    images = torch.randint(0, 256, (n, 3, 16, 16), generator=g, dtype=torch.uint8)
    return ImageSet(images, torch.arange(n) % 3)


def test_cached_features_equal_fresh_ones_and_fill_incrementally(tmp_path):
    b, cache = _cache(tmp=tmp_path)
    data = _images()
    first = cache.features(data, "d1", torch.arange(0, 10))
    assert cache.stats.computed == 10 and cache.stats.reused == 0
    both = cache.features(data, "d1", torch.arange(5, 20))
    assert cache.stats.computed == 20 and cache.stats.reused == 5  # only the 10 new images were computed
    b.model.eval()
    with torch.no_grad():
        x = cache.pipeline.transform(data.images, augment=False)
        fresh = b.model.forward_head(b.model.forward_features(x), pre_logits=True)
    assert torch.allclose(both, fresh[5:20], atol=1e-5) and torch.allclose(first, fresh[:10], atol=1e-5)


def test_cache_key_changes_with_weights_data_and_preprocessing(tmp_path):
    _, a = _cache(tmp=tmp_path, seed=0)
    _, same = _cache(tmp=tmp_path, seed=0)
    _, other_weights = _cache(tmp=tmp_path, seed=1)
    _, other_size = _cache(tmp=tmp_path, seed=0, image_size=48)
    assert a.prefix == same.prefix
    assert len({a.prefix, other_weights.prefix, other_size.prefix}) == 3
    data = _images()
    a.features(data, "d1", torch.arange(4))
    same.features(data, "d2", torch.arange(4))  # another dataset digest: another file, recomputed
    assert same.stats.computed == 4 and len(list((tmp_path / "features").glob("*.pt"))) == 2


def test_a_cache_written_by_other_code_is_rebuilt_and_a_valid_one_is_reused(tmp_path, monkeypatch):
    data = _images()
    _, broken = _cache(tmp=tmp_path)
    with monkeypatch.context() as patch:  # a regression in the code under test: eval() a no-op
        patch.setattr(torch.nn.Module, "eval", lambda self: self)
        stale = broken.features(data, "d1", torch.arange(20))
    _, fixed = _cache(tmp=tmp_path)  # the same weights and preprocessing, so the same cache key
    assert fixed.prefix == broken.prefix
    with pytest.warns(SftbenchWarning, match="no longer matches what the backbone computes"):
        rebuilt = fixed.features(data, "d1", torch.arange(20))
    assert fixed.stats.computed == 20 and fixed.stats.reused == 0
    assert not torch.allclose(rebuilt, stale, atol=1e-3)  # a real difference, so the check was needed
    _, again = _cache(tmp=tmp_path)
    assert torch.equal(again.features(data, "d1", torch.arange(20)), rebuilt)
    assert again.stats.computed == 0 and again.stats.reused == 20


def probe_suite(**train):
    return {
        "name": "probe",
        "defaults": {"epochs": 3, "batch_size": 16, "image_size": 32, "optimizer": {"lr": 0.05}, **train},
        "matrix": {"backbones": [{"name": "test_efficientnet", "weights": "random"}],
                   "datasets": [{"name": "synthetic", "val_fraction": 0.25, "options": {"train": 96, "test": 48}}],
                   "strategies": ["linear_probe", {"name": "lp_ft", "params": {"lp_epochs": 2}}]},
    }


def test_probe_on_cached_features_matches_the_naive_path():
    cached = expand(parse_suite(probe_suite(feature_cache=True)))
    naive = expand(parse_suite(probe_suite(feature_cache=False)))
    for fast_case, slow_case in zip(cached, naive):
        fast, slow = run_case(fast_case, CPU), run_case(slow_case, CPU)
        assert fast.status == slow.status == "ok", (fast.error, slow.error)
        assert fast.strategy.plans[0]["train_path"] == "cached_features"
        assert slow.strategy.plans[0]["train_path"] == "images"
        assert abs(fast.metrics.top1 - slow.metrics.top1) <= 1 / 48 + 1e-9
        for a, b in zip(fast.history, slow.history):
            assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-3, abs=1e-4)


def test_lbfgs_probe_and_amp_channels_last_run_on_cpu():
    data = probe_suite(precision="bf16", channels_last=True)
    data["matrix"]["strategies"] = [{"name": "linear_probe", "params": {"probe": "lbfgs", "max_iter": 50}}, "full"]
    for case in expand(parse_suite(data)):
        record = run_case(case, CPU)
        assert record.status == "ok", record.error
        assert record.data_path.channels_last is True
    lbfgs = run_case(expand(parse_suite({**probe_suite(), "matrix": {**probe_suite()["matrix"], "strategies": [
        {"name": "linear_probe", "params": {"probe": "lbfgs"}}]}}))[0], CPU)
    assert lbfgs.history[0]["phase"] == "lbfgs" and lbfgs.metrics.top1 > 0.9  # separable prototypes


def test_probe_results_do_not_depend_on_the_cache_state(tmp_path, monkeypatch):
    """Fresh caches (weights converted, features extracted), a cache partly filled by another seed's
    split, and warm caches: identical top-1 and per-example results. Real Lite0 weights, because a
    cold weight conversion once moved the global RNG and changed the new head's initialisation."""
    monkeypatch.setenv("SFTBENCH_CACHE", str(tmp_path / "cache"))
    suite = {"name": "cache", "defaults": {"epochs": 1, "batch_size": 32, "image_size": 64},
             "matrix": {"backbones": ["tf_efficientnet_lite0"],
                        "datasets": [{"name": "mnist5k", "train_size": 300, "test_size": 200}],
                        "strategies": ["linear_probe"]}}
    seed0, seed1 = (expand(parse_suite(suite), seeds=[s])[0] for s in (0, 1))
    cold = run_case(seed0, CPU)
    other = run_case(seed1, CPU)  # extracts the images seed 0 did not use
    warm = run_case(seed0, CPU)
    assert cold.features.computed > 0 and warm.features.computed == 0 and other.ok
    assert warm.metrics == cold.metrics and warm.history == cold.history
    assert warm.per_example == cold.per_example


@pytest.mark.parametrize("damage", [lambda b: b[: len(b) // 2], lambda b: b"garbage", lambda b: b""])
def test_a_damaged_feature_cache_file_is_rebuilt_with_a_warning(tmp_path, damage):
    from sftbench.errors import SftbenchWarning

    _, cache = _cache(tmp=tmp_path)
    data = _images()
    expected = cache.features(data, "d1", torch.arange(20))
    [path] = list(tmp_path.rglob("*.pt*"))
    path.write_bytes(damage(path.read_bytes()))
    _, again = _cache(tmp=tmp_path)
    with pytest.warns(SftbenchWarning, match="feature cache file .* is unreadable .*; it is rebuilt"):
        rebuilt = again.features(data, "d1", torch.arange(20))
    assert again.stats.computed == 20 and torch.equal(rebuilt, expected)


def test_last_k_on_a_cached_frozen_prefix_matches_the_image_path():
    """last_k trains on its frozen prefix's cached output (engine/prefix.py): the same losses, top-1
    and per-example results as the image path; full and bitfit have no frozen prefix and keep images."""
    strategies = [{"name": "last_k", "params": {"k": 1}}, {"name": "last_k", "params": {"k": 3}}, "full", "bitfit"]
    suites = [probe_suite(feature_cache=cache) for cache in (True, False)]
    for data in suites:
        data["matrix"]["strategies"] = strategies
    for fast_case, slow_case in zip(*(expand(parse_suite(data)) for data in suites)):
        fast, slow = run_case(fast_case, CPU), run_case(slow_case, CPU)
        assert fast.status == slow.status == "ok", (fast.error, slow.error)
        expected = "cached_prefix" if fast_case.strategy.name == "last_k" else "images"
        assert [p["train_path"] for p in fast.strategy.plans] == [expected], fast_case.case_id
        assert [p["train_path"] for p in slow.strategy.plans] == ["images"]
        for a, b in zip(fast.history, slow.history, strict=True):
            assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-4, abs=1e-5), fast_case.case_id
            assert a["val_top1"] == b["val_top1"]
        assert fast.metrics.top1 == slow.metrics.top1


def test_the_prefix_boundary_is_the_first_all_trainable_module_after_frozen_ones_only():
    from torch import nn

    from sftbench.engine.prefix import find_boundary

    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Sequential(nn.Conv2d(4, 4, 1), nn.ReLU()), nn.Flatten(),
                          nn.LazyLinear(2))
    example = torch.zeros(1, 3, 8, 8)
    model(example)
    names = [n for n, _ in model.named_parameters()]
    assert find_boundary(model, {n for n in names if not n.startswith("0.")}, example) == "1"
    assert find_boundary(model, {n for n in names if n.startswith("3.")}, example) == "3"
    assert find_boundary(model, set(names), example) is None  # nothing frozen before: no prefix to cache
    assert find_boundary(model, {"0.bias", "3.weight", "3.bias"}, example) is None  # a trainable bias up front

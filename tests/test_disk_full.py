"""A cache that cannot be written (a full disk, as found when a benchmark filled /tmp) costs speed,
never the case: one warning, and the run goes on uncached."""
from __future__ import annotations

import errno

import numpy as np
import pytest
import torch

from sftbench.data import features, images
from sftbench.data.datasets import DATASETS
from sftbench.engine.runner import RunOptions, run_case
from sftbench.errors import SftbenchWarning
from sftbench.suite.cases import expand
from sftbench.suite.loader import parse_suite


def disk_full(*args, **kwargs):
    raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 61184 vs 61040")


def test_a_probe_case_survives_a_feature_cache_it_cannot_write(tiny_suite, monkeypatch, tmp_path):
    monkeypatch.setenv("SFTBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(features.torch, "save", disk_full)
    probe = next(c for c in expand(parse_suite(tiny_suite)) if c.strategy.name == "linear_probe")
    with pytest.warns(SftbenchWarning, match="could not write the feature cache .*goes on without caching"):
        record = run_case(probe, RunOptions(torch.device("cpu")))
    assert record.ok and record.top1 is not None
    assert not list((tmp_path / "cache" / "features").glob("*.tmp"))  # no half-written file left


def test_an_image_folder_loads_when_its_cache_cannot_be_written(tmp_path, monkeypatch):
    from PIL import Image

    for label, colour in (("a", 20), ("b", 230)):
        (tmp_path / "imgs" / label).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (10, 10), (colour,) * 3).save(tmp_path / "imgs" / label / f"{i}.png")
    monkeypatch.setenv("SFTBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(images.np, "save", lambda *a, **k: (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space left")))
    with pytest.warns(SftbenchWarning, match="could not write the image cache"):
        raw = DATASETS.get("image_folder").factory(tmp_path / "imgs", {"size": 8, "test_fraction": 0.34})
    assert (len(raw.train), len(raw.test)) == (4, 2) and raw.train.images.dtype == torch.uint8
    assert np.all(raw.test.images.numpy()[raw.test.labels.numpy() == 1] > 200)

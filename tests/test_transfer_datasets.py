"""The torchvision transfer datasets: each read from a tiny fake in its own on-disk layout (never the
network), with its official split, and one sentence when it is missing offline."""
from __future__ import annotations

import pytest
import torchvision.datasets as tvd
from transfer_fakes import CLASSES, FAKES, NAMES, TEST, TRAIN
from typer.testing import CliRunner

from sftbench.cli import app
from sftbench.data.datasets import DATASETS
from sftbench.data.transfer import TRANSFER_SETS
from sftbench.errors import DatasetUnavailableError

NATIVE = {"svhn": 32, "stl10": 96}  # shipped as decoded arrays, kept at their size like CIFAR
NO_SPLIT = {"eurosat", "caltech101"}  # a stratified 20% of each class held out instead


@pytest.fixture
def trusting_checksums(monkeypatch):
    """Fakes cannot match the md5 sums torchvision checks for these three; everything else is real."""
    for cls in (tvd.Flowers102, tvd.SVHN, tvd.STL10):
        monkeypatch.setattr(cls, "_check_integrity", lambda self: True)


def test_every_listed_dataset_has_a_fake():
    assert sorted(FAKES) == sorted(TRANSFER_SETS)


@pytest.mark.parametrize("name", sorted(FAKES))
def test_transfer_dataset_loads_its_official_split_from_its_layout(name, tmp_path, trusting_checksums):
    FAKES[name](tmp_path)
    raw = DATASETS.get(name).factory(tmp_path, {"size": 16})
    side = NATIVE.get(name, 16)
    assert raw.train.images.shape[1:] == (3, side, side) and raw.train.images.dtype.is_floating_point is False
    if name in NO_SPLIT:
        per_class = TRAIN + TEST
        assert len(raw.test) == CLASSES * round(0.2 * per_class) and len(raw.train) + len(raw.test) == CLASSES * per_class
    else:
        assert (len(raw.train), len(raw.test)) == (CLASSES * TRAIN, CLASSES * TEST)
    assert sorted(raw.train.labels.unique().tolist()) == list(range(CLASSES))
    assert sorted(raw.test.labels.unique().tolist()) == list(range(CLASSES))
    assert len(raw.classes) == (102 if name == "flowers102" else CLASSES)  # torchvision lists Flowers' 102 names
    if name not in ("flowers102", "oxford_pets", "svhn", "eurosat", "gtsrb"):  # these name classes their own way
        assert list(raw.classes) == NAMES


def test_a_missing_transfer_dataset_offline_is_one_sentence_naming_it_and_the_fix(tmp_path):
    with pytest.raises(DatasetUnavailableError) as err:
        DATASETS.get("flowers102").factory(tmp_path, {})
    message = str(err.value)
    assert "Oxford Flowers-102 is missing or corrupt in" in message and str(tmp_path) in message
    assert "--data-root" in message and "\n" not in message


def test_list_datasets_shows_class_counts_and_split_sizes():
    result = CliRunner().invoke(app, ["list", "datasets"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "102 classes, 2,040/6,149 train/test" in result.output
    assert "27,000 images, no official split" in result.output

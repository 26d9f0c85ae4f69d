from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from sftbench.data.builtin import DEBIAN_DIRS
from sftbench.data.pipeline import (
    BatchPipeline,
    Preprocessing,
    random_crop,
    random_flip,
)
from sftbench.data.splits import _load_raw, load_raw, make_splits
from sftbench.data.types import ImageSet, RawDataset
from sftbench.errors import ConfigError, DatasetUnavailableError
from sftbench.schema import DatasetSpec


def write_cifar10(root: Path, train_per_batch: int = 6, test: int = 8) -> None:
    """A tiny file set in the real `cifar-10-batches-py` layout, with known pixels and labels."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)

    def batch(n: int, offset: int) -> dict:
        labels = [(offset + i) % 10 for i in range(n)]
        data = rng.integers(0, 256, size=(n, 3 * 32 * 32), dtype=np.uint8)
        return {"data": data, "labels": labels}  # str keys, as torchvision reads them

    for i in range(1, 6):
        with open(folder / f"data_batch_{i}", "wb") as fh:
            pickle.dump(batch(train_per_batch, i), fh)
    with open(folder / "test_batch", "wb") as fh:
        pickle.dump(batch(test, 0), fh)
    with open(folder / "batches.meta", "wb") as fh:
        pickle.dump({"label_names": [f"c{i}" for i in range(10)]}, fh)


def test_real_torchvision_cifar10_loader_reads_the_pickle_layout(tmp_path, monkeypatch):
    import torchvision.datasets.cifar as tv_cifar

    write_cifar10(tmp_path)
    # our tiny files cannot match the real md5s; everything else is torchvision's own reader
    monkeypatch.setattr(tv_cifar, "check_integrity", lambda path, md5=None: Path(path).is_file())
    raw = load_raw(DatasetSpec(name="cifar10", root=str(tmp_path)))
    assert raw.train.images.shape == (30, 3, 32, 32) and raw.train.images.dtype == torch.uint8
    assert raw.test.images.shape == (8, 3, 32, 32)
    assert raw.classes == tuple(f"c{i}" for i in range(10))
    assert raw.test.labels.tolist() == [i % 10 for i in range(8)]
    with open(tmp_path / "cifar-10-batches-py" / "test_batch", "rb") as fh:
        first = pickle.load(fh)["data"][0].reshape(3, 32, 32)
    assert torch.equal(raw.test.images[0], torch.from_numpy(first))  # CHW order survives


def test_missing_dataset_offline_is_one_sentence(tmp_path):
    with pytest.raises(DatasetUnavailableError) as info:
        load_raw(DatasetSpec(name="cifar100", root=str(tmp_path / "empty")))
    message = str(info.value)
    assert message.startswith(f"CIFAR-100 is missing or corrupt in {tmp_path / 'empty'} (RuntimeError: Dataset not found or corrupted) and cannot be downloaded (no network)")
    assert "--data-root" in message and "\n" not in message


def test_a_truncated_cifar_file_is_one_sentence_naming_the_folder(tmp_path, monkeypatch):
    import torchvision.datasets.cifar as tv_cifar

    write_cifar10(tmp_path)
    monkeypatch.setattr(tv_cifar, "check_integrity", lambda path, md5=None: Path(path).is_file())
    batch = tmp_path / "cifar-10-batches-py" / "test_batch"
    batch.write_bytes(batch.read_bytes()[:500])  # cut mid-pickle, as a failed copy would
    with pytest.raises(DatasetUnavailableError) as info:
        load_raw(DatasetSpec(name="cifar10", root=str(tmp_path)))
    message = str(info.value)
    assert message.startswith(f"CIFAR-10 is missing or corrupt in {tmp_path} (") and "\n" not in message


@pytest.mark.skipif(not DEBIAN_DIRS["FashionMNIST"].is_dir(), reason="Debian package dataset-fashion-mnist not installed")
def test_a_truncated_idx_file_is_one_sentence_naming_the_folder(tmp_path):
    load_raw(DatasetSpec(name="fashion_mnist", root=str(tmp_path)))  # unpacks the Debian copy
    images = tmp_path / "FashionMNIST" / "raw" / "t10k-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:1000])
    _load_raw.cache_clear()  # loads are memoised per process
    with pytest.raises(DatasetUnavailableError) as info:
        load_raw(DatasetSpec(name="fashion_mnist", root=str(tmp_path)))
    assert str(info.value).startswith(f"Fashion-MNIST is missing or corrupt in {tmp_path} (")


@pytest.mark.skipif(not DEBIAN_DIRS["FashionMNIST"].is_dir(), reason="Debian package dataset-fashion-mnist not installed")
def test_fashion_mnist_offline_from_debian_package(tmp_path):
    raw = load_raw(DatasetSpec(name="fashion_mnist", root=str(tmp_path)))
    assert len(raw.train) == 60000 and len(raw.test) == 10000
    assert raw.train.images.shape[1:] == (1, 28, 28)
    assert raw.classes[0] == "T-shirt/top"


def test_mnist5k_fixed_stratified_split():
    raw = load_raw(DatasetSpec(name="mnist5k"))
    assert (len(raw.train), len(raw.test)) == (4000, 1000)
    assert torch.bincount(raw.test.labels).tolist() == [100] * 10
    assert raw.train.images.max() > 200  # real digits, not a blank array
    larger = load_raw(DatasetSpec(name="mnist5k", options={"test_per_class": 300}))
    assert (len(larger.train), len(larger.test)) == (2000, 3000)
    per_class = lambda images, n: images.reshape(10, n, -1)  # noqa: E731  (sorted by class)
    assert torch.equal(per_class(larger.test.images, 300)[:, 200:], per_class(raw.test.images, 100))  # kept in it


@pytest.mark.parametrize("options, named", [({"test_per_class": 500}, "500"), ({"test_size": 3}, "test_size")])
def test_mnist5k_refuses_a_bad_option_naming_it(options, named):
    with pytest.raises(ConfigError, match=named):
        load_raw(DatasetSpec(name="mnist5k", options=options))


def _raw(n_train: int = 100, n_test: int = 40) -> RawDataset:
    images = torch.arange(n_train, dtype=torch.int64).view(-1, 1, 1, 1).expand(-1, 1, 2, 2).to(torch.uint8)
    train = ImageSet(images, torch.arange(n_train) % 3)
    test = ImageSet(torch.zeros(n_test, 1, 2, 2, dtype=torch.uint8), torch.arange(n_test) % 3)
    return RawDataset(train, test, ("a", "b", "c"), "t")


def test_splits_carve_validation_with_the_seed_and_keep_test_fixed():
    spec = DatasetSpec(name="synthetic", train_size=50, test_size=10, val_fraction=0.2)
    a, b, c = make_splits(_raw(), spec, 0), make_splits(_raw(), spec, 0), make_splits(_raw(), spec, 1)
    assert a.sizes() == {"train": 40, "val": 10, "test": 10}
    ids = lambda s: set(s.images[:, 0, 0, 0].tolist())  # noqa: E731
    assert not ids(a.train) & ids(a.val)  # disjoint
    assert ids(a.train) == ids(b.train) and ids(a.train) != ids(c.train)
    assert torch.equal(a.test.labels, c.test.labels)  # the test subset ignores the seed


def test_pipeline_makes_grey_rgb_resizes_and_normalises():
    prep = Preprocessing(image_size=8, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    pipe = BatchPipeline(prep, torch.device("cpu"))
    grey = ImageSet(torch.full((5, 1, 4, 4), 255, dtype=torch.uint8), torch.zeros(5, dtype=torch.long))
    batches = list(pipe.batches(grey, 2, shuffle=False))
    assert [x.shape for x, _ in batches] == [(2, 3, 8, 8), (2, 3, 8, 8), (1, 3, 8, 8)]
    assert torch.allclose(batches[0][0], torch.ones(2, 3, 8, 8))  # white -> (1 - 0.5) / 0.5


def test_device_augmentations_keep_pixels_and_shapes():
    g = torch.Generator().manual_seed(0)
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).view(2, 3, 8, 8)
    flipped = random_flip(x.repeat(50, 1, 1, 1), g)
    n_flipped = sum(torch.equal(f, x[i % 2].flip(-1)) for i, f in enumerate(flipped))
    assert 30 <= n_flipped <= 70  # about half
    cropped = random_crop(x, g)
    assert cropped.shape == x.shape


def test_a_fixed_split_seed_gives_every_seed_the_same_training_pool():
    fixed = DatasetSpec(name="synthetic", train_size=50, test_size=10, val_fraction=0.2, split_seed=3)
    ids = lambda s: s.images[:, 0, 0, 0].tolist()  # noqa: E731
    pools = [make_splits(_raw(), fixed, seed) for seed in (0, 1, 7)]
    assert ids(pools[0].train) == ids(pools[1].train) == ids(pools[2].train)
    assert ids(pools[0].val) == ids(pools[2].val)
    free = DatasetSpec(name="synthetic", train_size=50, test_size=10, val_fraction=0.2)
    assert ids(pools[0].train) == ids(make_splits(_raw(), free, 3).train)  # the pool seed 3 itself draws
    assert ids(make_splits(_raw(), free, 0).train) != ids(make_splits(_raw(), free, 1).train)

"""Your own images (`image_folder`, `csv`) decoded once and cached, bad files skipped with one warning,
and the few-shot / VTAB-1k splits."""
from __future__ import annotations

import json
import os
import warnings

import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from sftbench.cli import app
from sftbench.data import images as image_cache
from sftbench.data.datasets import DATASETS
from sftbench.data.splits import make_splits
from sftbench.data.types import ImageSet, RawDataset
from sftbench.errors import ConfigError, SftbenchWarning
from sftbench.schema import DatasetSpec
from sftbench.suite.cases import expand
from sftbench.suite.loader import parse_suite


def write_images(folder, count, colour, size=(20, 14)):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        Image.new("RGB", size, tuple((colour + 7 * i) % 256 for _ in range(3))).save(folder / f"img{i}.png")


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "pets"
    write_images(root / "dog", 6, 200)
    write_images(root / "cat", 4, 20)
    (root / "cat" / "notes.txt").write_text("not an image")
    (root / "dog" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    return root


def load(name, root, **options):
    return DATASETS.get(name).factory(root, options)


def test_image_folder_decodes_once_skips_bad_files_and_holds_out_a_stratified_test_split(folder, monkeypatch):
    with pytest.warns(SftbenchWarning) as caught:
        raw = load("image_folder", folder, size=8, test_fraction=0.25)
    message = str(caught[0].message)
    assert "skipped 2 file(s)" in message and "broken.png" in message and "notes.txt" in message
    assert raw.classes == ("cat", "dog")  # sorted folder names
    assert raw.train.images.shape[1:] == (3, 8, 8) and raw.train.images.dtype == torch.uint8
    assert torch.bincount(raw.test.labels).tolist() == [1, 2]  # round(0.25 * 4), round(0.25 * 6)
    assert torch.bincount(raw.train.labels).tolist() == [3, 4]
    monkeypatch.setattr(image_cache, "_decode_one", lambda *a: pytest.fail("the warm cache decoded an image"))
    with pytest.warns(SftbenchWarning, match="skipped 2 file"):  # still told, from the cache
        again = load("image_folder", folder, size=8, test_fraction=0.25)
    assert torch.equal(again.train.images, raw.train.images) and torch.equal(again.test.labels, raw.test.labels)


def test_a_changed_file_is_decoded_again(folder, monkeypatch):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SftbenchWarning)
        load("image_folder", folder, size=8)
        write_images(folder / "cat", 1, 250)  # img0.png rewritten: new content and mtime
        stamp = (folder / "cat" / "img0.png").stat()
        os.utime(folder / "cat" / "img0.png", ns=(stamp.st_atime_ns, stamp.st_mtime_ns + 10**9))
        calls = []
        original = image_cache._decode_one
        monkeypatch.setattr(image_cache, "_decode_one", lambda *a: calls.append(a) or original(*a))
        load("image_folder", folder, size=8)
    assert calls  # the digest changed, so the split was decoded again


def test_train_and_test_folders_are_the_official_split(tmp_path):
    for split, count in (("train", 3), ("test", 2)):
        for label, colour in (("a", 10), ("b", 240)):
            write_images(tmp_path / split / label, count, colour)
    raw = load("image_folder", tmp_path, size=8, crop=False)
    assert (len(raw.train), len(raw.test)) == (6, 4) and raw.classes == ("a", "b")
    assert raw.train.images[raw.train.labels == 1].float().mean() > 200  # labels follow the folders


def test_a_class_folder_with_no_readable_image_is_an_error_naming_it(folder):
    for file in (folder / "cat").iterdir():
        file.write_bytes(b"not an image")
    with warnings.catch_warnings(), pytest.raises(ConfigError, match=f"class folder {folder}/cat has no readable"):
        warnings.simplefilter("ignore", SftbenchWarning)
        load("image_folder", folder, size=8)
    (folder / "empty").mkdir()
    with pytest.raises(ConfigError, match=f"class folder {folder / 'empty'} is empty"):
        load("image_folder", folder, size=8)


def test_image_folder_without_class_folders_says_how_to_point_at_them(tmp_path):
    with pytest.raises(ConfigError, match="found no class folders in .*set the dataset's `root:`"):
        load("image_folder", tmp_path / "nowhere")


def test_csv_rows_with_train_and_test_files_or_one_file(folder, tmp_path):
    rows = [f"{folder.name}/dog/img{i},dog" for i in range(6)] + [f"{folder.name}/cat/img{i},cat" for i in range(4)]
    rows = [f"{path}.png,{label}" for path, label in (r.split(",") for r in rows)]
    (tmp_path / "all.csv").write_text("path,label\n" + "\n".join(rows) + "\n")
    (tmp_path / "train.csv").write_text("\n".join(rows[:4] + rows[6:8]) + "\n")
    (tmp_path / "test.csv").write_text("\n".join(rows[4:6] + rows[8:]) + "\n")
    both = load("csv", tmp_path, train="train.csv", test="test.csv", size=8)
    assert (len(both.train), len(both.test)) == (6, 4) and both.classes == ("cat", "dog")
    one = load("csv", tmp_path, file="all.csv", test_fraction=0.5, size=8)
    assert torch.bincount(one.test.labels).tolist() == [2, 3]
    (tmp_path / "bad.csv").write_text("just-a-path.png\n")
    with pytest.raises(ConfigError, match="bad.csv: row 1 is not `path,label`"):
        load("csv", tmp_path, file="bad.csv")
    with pytest.raises(ConfigError, match="needs either options `train` and `test`"):
        load("csv", tmp_path, train="train.csv")
    with pytest.raises(ConfigError, match="option sizes .* is invalid"):
        load("csv", tmp_path, file="all.csv", sizes=3)


def labelled(n_per_class, classes=5):
    labels = torch.arange(classes).repeat_interleave(n_per_class)
    return RawDataset(ImageSet(torch.zeros(len(labels), 1, 2, 2, dtype=torch.uint8), labels),
                      ImageSet(torch.zeros(30, 1, 2, 2, dtype=torch.uint8), torch.arange(30) % classes),
                      tuple(f"c{i}" for i in range(classes)), "fake")


def test_shots_draw_exactly_k_per_class_stable_per_seed_and_disjoint_from_validation():
    raw, spec = labelled(40), DatasetSpec(name="synthetic", shots=10, val_size=25)
    first, again, other = make_splits(raw, spec, 0), make_splits(raw, spec, 0), make_splits(raw, spec, 1)
    assert torch.bincount(first.train.labels).tolist() == [10] * 5
    assert torch.equal(first.index["train"], again.index["train"])  # the same draw for every strategy
    assert not torch.equal(first.index["train"].sort().values, other.index["train"].sort().values)
    assert len(first.val) == 25 and not set(first.index["val"].tolist()) & set(first.index["train"].tolist())
    assert len(first.test) == 30  # the full test split
    scarce = RawDataset(raw.train.subset(torch.arange(35, 200)), raw.test, raw.classes, "fake")  # c0: 5 images
    with pytest.raises(ConfigError, match="shots 10 but class 'c0' has only 5 training images"):
        make_splits(scarce, DatasetSpec(name="synthetic", shots=10), 0)


def test_vtab_1k_is_800_training_and_200_validation_images():
    raw = labelled(300)
    splits = make_splits(raw, DatasetSpec(name="synthetic", train_size=800, val_size=200), 3)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (800, 200, 30)
    assert not set(splits.index["val"].tolist()) & set(splits.index["train"].tolist())
    with pytest.raises(ConfigError, match="train_size 1400 \\+ val_size 200 exceeds the 1500"):
        make_splits(raw, DatasetSpec(name="synthetic", train_size=1400, val_size=200), 0)


def test_shots_and_train_size_together_are_refused(tiny_suite):
    tiny_suite["matrix"]["datasets"][0].update(shots=2, train_size=10)
    with pytest.raises(ConfigError, match="shots 2 and train_size 10 both set the training size"):
        parse_suite(tiny_suite)


def test_new_split_keys_leave_existing_spec_hashes_alone(tiny_suite):
    plain = [c.spec_hash for c in expand(parse_suite(tiny_suite))]
    tiny_suite["matrix"]["datasets"][0]["shots"] = 2
    assert [c.spec_hash for c in expand(parse_suite(tiny_suite))] != plain


def test_a_suite_runs_end_to_end_on_an_image_folder_beside_it(folder, tiny_suite, write_suite, tmp_path):
    tiny_suite["matrix"]["datasets"] = [{"name": "image_folder", "root": "pets", "val_fraction": 0.0,
                                         "options": {"size": 16, "test_fraction": 0.25}}]
    tiny_suite["matrix"]["strategies"] = ["full"]
    suite = write_suite(tiny_suite)  # beside tmp_path/pets: the relative root is anchored at the suite
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["run", "--suite", str(suite), "--device", "cpu", "--out", str(out)])
    assert result.exit_code == 0, result.output
    [record] = [json.loads(line) for path in (out / "tiny").glob("*.jsonl") for line in path.read_text().splitlines()]
    assert record["status"] == "ok" and record["dataset"]["classes"] == ["cat", "dog"]
    assert record["dataset"]["sizes"] == {"train": 7, "val": 0, "test": 3}


def test_a_damaged_image_cache_is_decoded_again_with_a_warning(folder, monkeypatch, tmp_path):
    monkeypatch.setenv("SFTBENCH_CACHE", str(tmp_path / "cache"))  # this test's own cache
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SftbenchWarning)
        first = load("image_folder", folder, size=8).train.images.clone()  # the cache is memory-mapped
    for pixels in (tmp_path / "cache" / "images").glob("*.npy"):  # the decoded folder and its holdout parts
        pixels.write_bytes(pixels.read_bytes()[:100])  # truncated
    with pytest.warns(SftbenchWarning, match="image cache .* is damaged"):
        again = load("image_folder", folder, size=8)
    assert torch.equal(again.train.images, first)

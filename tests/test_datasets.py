"""Core's datasets: the real file formats (written here, since nothing is downloaded in
tests), the shipped digits, the 2-D mixtures, and the errors a user sees."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from toolkit.datasets import MIXTURES, load_dataset, read_idx
from toolkit.errors import ToolkitError


def write_idx(path, array: np.ndarray, compress: bool) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, dtype=">i4").tobytes()
    raw = header + array.astype(np.uint8).tobytes()
    if compress:
        with gzip.open(path, "wb") as f:
            f.write(raw)
    else:
        path.with_suffix("").write_bytes(raw) if path.suffix == ".gz" else path.write_bytes(raw)


def test_mnist_reads_idx_files_gzipped_or_not(tmp_path):
    rng = np.random.default_rng(0)
    images = {"train": rng.integers(0, 256, (12, 28, 28)), "t10k": rng.integers(0, 256, (5, 28, 28))}
    for prefix, array in images.items():
        write_idx(tmp_path / f"{prefix}-images-idx3-ubyte.gz", array, compress=prefix == "train")
        write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", np.arange(len(array)) % 10, compress=True)
    x, y = load_dataset("mnist", "train", data_dir=str(tmp_path))
    assert x.shape == (12, 1, 28, 28) and x.dtype == np.float32 and np.allclose(x[:, 0] * 255, images["train"])
    assert y.tolist() == [i % 10 for i in range(12)]
    x, _ = load_dataset("fashion-mnist", "test", data_dir=str(tmp_path))
    assert x.shape == (5, 1, 28, 28) and np.allclose(x[:, 0] * 255, images["t10k"])


def test_a_truncated_idx_file_is_a_clear_error(tmp_path):
    path = tmp_path / "bad-idx3-ubyte"
    path.write_bytes(bytes([0, 0, 8, 1]) + np.array([10], dtype=">i4").tobytes() + b"abc")
    with pytest.raises(ToolkitError, match="truncated"):
        read_idx(path)


def test_cifar10_reads_the_binary_batches(tmp_path):
    rng = np.random.default_rng(0)
    batches = {}
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        records = rng.integers(0, 256, (3, 3073), dtype=np.uint8)
        records[:, 0] %= 10
        records.tofile(tmp_path / name)
        batches[name] = records
    x, y = load_dataset("cifar10", "test", data_dir=str(tmp_path))
    assert x.shape == (3, 3, 32, 32) and y.tolist() == batches["test_batch.bin"][:, 0].tolist()
    assert np.allclose(x[1, 0, 0, :3] * 255, batches["test_batch.bin"][1, 1:4])  # channel-major, row-major pixels
    assert load_dataset("cifar10", "train", data_dir=str(tmp_path))[0].shape == (15, 3, 32, 32)


def test_missing_files_without_downloads_name_what_is_needed(tmp_path, monkeypatch):
    monkeypatch.setenv("TOOLKIT_NO_DOWNLOAD", "1")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with pytest.raises(ToolkitError, match=r"dataset 'mnist' not found in --data-dir .* \(needs train-images-idx3"):
        load_dataset("mnist", "train", data_dir=str(tmp_path))
    with pytest.raises(ToolkitError, match="--data-dir .*missing does not exist"):
        load_dataset("mnist", "train", data_dir=str(tmp_path / "missing"))


def test_folder_crops_and_resizes_every_image(tmp_path):
    from PIL import Image

    for i in range(12):
        Image.fromarray(np.full((40, 80, 3), i * 20, dtype=np.uint8)).save(tmp_path / f"{i:02d}.png")
    train, labels = load_dataset("folder", "train", data_dir=str(tmp_path))
    test, _ = load_dataset("folder", "test", data_dir=str(tmp_path))
    assert labels is None and train.shape == (11, 3, 64, 64) and test.shape == (1, 3, 64, 64)
    assert np.allclose(test, 9 * 20 / 255, atol=1 / 255)  # every tenth image is held out
    (tmp_path / "empty").mkdir()
    with pytest.raises(ToolkitError, match="no images"):
        load_dataset("folder", "train", data_dir=str(tmp_path / "empty"))
    with pytest.raises(ToolkitError, match="needs --data-dir"):
        load_dataset("folder", "train")


def test_digits_and_the_mixtures():
    x, y = load_dataset("digits", "train")
    xt, yt = load_dataset("digits", "test")
    assert x.shape == (1437, 1, 8, 8) and xt.shape == (360, 1, 8, 8) and 0 <= x.min() and x.max() == 1
    assert set(y.tolist()) == set(range(10)) and set(yt.tolist()) == set(range(10))
    assert load_dataset("digits32", "test")[0].shape == (360, 1, 32, 32)
    for name, k in (("ring8", 8), ("grid25", 25)):
        points, modes = load_dataset(name, "train")
        centres, std = MIXTURES[name]
        assert points.shape == (50_000, 2) and len(centres) == k and set(modes.tolist()) == set(range(k))
        assert np.abs(points - centres[modes]).max() < 6 * std
        assert load_dataset(name, "test")[0].shape == (2_500, 2)
    assert np.array_equal(load_dataset("ring8", "train", seed=1)[0], load_dataset("ring8", "train", seed=2)[0])


def test_unknown_split_and_dataset():
    with pytest.raises(ToolkitError, match="unknown split 'valid'"):
        load_dataset("digits", "valid")
    with pytest.raises(ToolkitError, match="unknown dataset 'digit'; did you mean: digits"):
        load_dataset("digit")

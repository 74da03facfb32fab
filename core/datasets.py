"""Datasets for the generative trainers (``--data NAME``), registered by core through
``register_datasets`` like any plugin's.

Every loader is ``load(split, seed, data_dir)`` -> ``(samples, labels)``: samples as float32,
images shaped (N, C, H, W) in [0, 1] and 2-D points shaped (N, 2); labels as int64 (the
class, or for the mixtures the mode a point was drawn from), or None when a dataset has none.
Splits are ``train`` and ``test`` and do not depend on the run's seed, so every run of a
benchmark sees the same data.

* ``digits``: scikit-learn's 8x8 handwritten digits (1,797 images, shipped with the package);
  ``digits32``: the same, upscaled bilinearly to 32x32 for convolutional architectures.
* ``mnist``, ``fashion-mnist``: the standard IDX files (``train-images-idx3-ubyte`` and so
  on, gzipped or not) from ``--data-dir``, else downloaded into ``~/.cache/toolkit/datasets``.
* ``cifar10``: the binary version (``cifar-10-batches-bin``), read as raw bytes (the Python
  version is pickled, and toolkit never unpickles files), from ``--data-dir`` or downloaded.
* ``folder``: every image under ``--data-dir``, centre-cropped to a square, resized to 64x64,
  in the colour mode of the first image.
* ``ring8``, ``grid25``: the 2-D Gaussian mixtures of the mode-collapse literature (8 modes on
  a circle of radius 2 with std 0.02; a 5x5 grid with spacing 2 and std 0.05), 50,000
  training and 2,500 test points; ``MIXTURES`` gives their modes and std for the metrics.

Set ``TOOLKIT_NO_DOWNLOAD=1`` to forbid downloads (clusters without internet): a missing
dataset is then a clear error at once instead of a network timeout.
"""

from __future__ import annotations

import gzip
import os
import shutil
import tarfile
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

from toolkit.errors import ToolkitError

Labeled = tuple[np.ndarray, "np.ndarray | None"]

SPLITS = ("train", "test")


def load_dataset(name: str, split: str = "train", seed: int = 0, data_dir: str | None = None) -> Labeled:
    """The registered dataset ``name`` as (samples, labels or None), whatever its target returns."""
    from toolkit.plugins import get_registry

    if split not in SPLITS:
        raise ToolkitError(f"unknown split '{split}'; valid: {', '.join(SPLITS)}")
    loaded = get_registry().load("dataset", name)(split=split, seed=seed, data_dir=data_dir)
    samples, labels = loaded if isinstance(loaded, tuple) else (loaded, None)
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim < 2 or len(samples) == 0:
        raise ToolkitError(f"dataset '{name}' ({split}) returned no samples")
    return samples, None if labels is None else np.asarray(labels, dtype=np.int64)


def cache_dir(*parts: str) -> Path:
    """``$XDG_CACHE_HOME/toolkit/...`` (default ``~/.cache/toolkit/...``)."""
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return root.joinpath("toolkit", *parts)


# -- scikit-learn's digits ------------------------------------------------------------------


def _digits(split: str, size: int) -> Labeled:
    try:
        from sklearn.datasets import load_digits
    except ImportError as error:
        raise ToolkitError("the 'digits' dataset needs scikit-learn: pip install scikit-learn") from error
    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[:, None]
    order = np.random.default_rng(0).permutation(len(images))  # a fixed split: 1,437 train, 360 test
    keep = order[:1437] if split == "train" else order[1437:]
    images, labels = images[keep], digits.target[keep].astype(np.int64)
    if size != 8:
        import torch
        import torch.nn.functional as F

        images = F.interpolate(torch.from_numpy(images), size=(size, size), mode="bilinear", align_corners=False)
        images = images.clamp(0, 1).numpy()
    return images, labels


def digits(split: str, seed: int, data_dir: str | None) -> Labeled:
    return _digits(split, 8)


def digits32(split: str, seed: int, data_dir: str | None) -> Labeled:
    return _digits(split, 32)


# -- downloads ------------------------------------------------------------------------------


def _fetch(name: str, files: list[str], mirrors: list[str], data_dir: str | None) -> Path:
    """The directory holding ``files``: ``data_dir`` if it has them, else the cache, filled
    from the first mirror that answers. Each file may also be present without ``.gz``."""

    def complete(directory: Path) -> bool:
        return all((directory / f).exists() or (directory / f.removesuffix(".gz")).exists() for f in files)

    if data_dir:
        directory = Path(data_dir)
        if complete(directory):
            return directory
        if not directory.is_dir():
            raise ToolkitError(f"--data-dir {directory} does not exist")
    target = cache_dir("datasets", name)
    if complete(target):
        return target
    where = f"--data-dir {data_dir}" if data_dir else f"{target}"
    wanted = ", ".join(files)
    if os.environ.get("TOOLKIT_NO_DOWNLOAD"):
        raise ToolkitError(f"dataset '{name}' not found in {where} (needs {wanted}) and TOOLKIT_NO_DOWNLOAD is set")
    target.mkdir(parents=True, exist_ok=True)
    errors = []
    for mirror in mirrors:
        try:
            for file in files:
                if not (target / file).exists():
                    _download(mirror + file, target / file)
            return target
        except OSError as error:
            errors.append(f"{mirror}: {error}")
    raise ToolkitError(f"dataset '{name}' not found in {where} (needs {wanted}) and the download failed "
                       f"({'; '.join(errors)}); put the files in a directory and pass --data-dir")


def _download(url: str, path: Path) -> None:
    with urllib.request.urlopen(url, timeout=30) as response, tempfile.NamedTemporaryFile(
            dir=path.parent, delete=False) as tmp:
        shutil.copyfileobj(response, tmp)
    os.replace(tmp.name, path)


def _open(path: Path):
    if path.exists():
        return gzip.open(path) if path.suffix == ".gz" else open(path, "rb")
    return open(path.with_suffix(""), "rb")


# -- MNIST and Fashion-MNIST (IDX files) ----------------------------------------------------

IDX_FILES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
             "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}
MIRRORS = {"mnist": ["https://ossci-datasets.s3.amazonaws.com/mnist/", "https://storage.googleapis.com/cvdf-datasets/mnist/"],
           "fashion-mnist": ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"]}


def read_idx(path: Path) -> np.ndarray:
    """An IDX array (the MNIST file format: magic, dims as big-endian int32, then uint8 data)."""
    with _open(path) as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ToolkitError(f"{path} is not an unsigned-byte IDX file")
    ndim = raw[3]
    shape = tuple(int(d) for d in np.frombuffer(raw, ">i4", count=ndim, offset=4))
    data = np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise ToolkitError(f"{path} is truncated: expected {int(np.prod(shape))} values, found {data.size}")
    return data.reshape(shape)


def _idx_dataset(name: str, split: str, data_dir: str | None) -> Labeled:
    images_file, labels_file = IDX_FILES[split]
    directory = _fetch(name, list(IDX_FILES["train"] + IDX_FILES["test"]), MIRRORS[name], data_dir)
    images = read_idx(directory / images_file).astype(np.float32)[:, None] / 255.0
    labels = read_idx(directory / labels_file).astype(np.int64)
    return images, labels


def mnist(split: str, seed: int, data_dir: str | None) -> Labeled:
    return _idx_dataset("mnist", split, data_dir)


def fashion_mnist(split: str, seed: int, data_dir: str | None) -> Labeled:
    return _idx_dataset("fashion-mnist", split, data_dir)


# -- CIFAR-10 (binary version) --------------------------------------------------------------

CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
CIFAR_BATCHES = {"train": [f"data_batch_{i}.bin" for i in range(1, 6)], "test": ["test_batch.bin"]}


def cifar10(split: str, seed: int, data_dir: str | None) -> Labeled:
    directory = _cifar_directory(data_dir)
    records = np.concatenate([np.fromfile(directory / f, np.uint8).reshape(-1, 3073) for f in CIFAR_BATCHES[split]])
    return records[:, 1:].reshape(-1, 3, 32, 32).astype(np.float32) / 255.0, records[:, 0].astype(np.int64)


def _cifar_directory(data_dir: str | None) -> Path:
    files = CIFAR_BATCHES["train"] + CIFAR_BATCHES["test"]
    for candidate in ([Path(data_dir), Path(data_dir) / "cifar-10-batches-bin"] if data_dir else []) + [
            cache_dir("datasets", "cifar10", "cifar-10-batches-bin")]:
        if all((candidate / f).exists() for f in files):
            return candidate
    archive = _fetch("cifar10", ["cifar-10-binary.tar.gz"], [CIFAR_URL.rsplit("/", 1)[0] + "/"], None)
    with tarfile.open(archive / "cifar-10-binary.tar.gz") as tar:
        tar.extractall(archive, filter="data")
    return archive / "cifar-10-batches-bin"


# -- any folder of images -------------------------------------------------------------------

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"}
FOLDER_SIZE = 64


def folder(split: str, seed: int, data_dir: str | None) -> Labeled:
    """Images under ``data_dir`` (recursively, sorted); the test split is every tenth image."""
    from PIL import Image

    if not data_dir or not Path(data_dir).is_dir():
        raise ToolkitError("--data folder needs --data-dir DIRECTORY holding images")
    paths = sorted(p for p in Path(data_dir).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise ToolkitError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) under {data_dir}")
    paths = [p for i, p in enumerate(paths) if (i % 10 == 9) == (split == "test")] or paths
    mode = "L" if Image.open(paths[0]).mode in ("L", "1", "I", "I;16") else "RGB"
    images = []
    for path in paths:
        image = Image.open(path).convert(mode)
        side = min(image.size)
        left, top = (image.width - side) // 2, (image.height - side) // 2
        image = image.crop((left, top, left + side, top + side)).resize((FOLDER_SIZE, FOLDER_SIZE), Image.BILINEAR)
        array = np.asarray(image, dtype=np.float32) / 255.0
        images.append(array[None] if mode == "L" else array.transpose(2, 0, 1))
    return np.stack(images), None


# -- 2-D Gaussian mixtures ------------------------------------------------------------------


def _ring8_modes() -> np.ndarray:
    angles = 2 * np.pi * np.arange(8) / 8
    return 2.0 * np.stack([np.cos(angles), np.sin(angles)], axis=1)


def _grid25_modes() -> np.ndarray:
    return np.array([(x, y) for x in range(-4, 5, 2) for y in range(-4, 5, 2)], dtype=np.float64)


MIXTURES: dict[str, tuple[np.ndarray, float]] = {"ring8": (_ring8_modes(), 0.02), "grid25": (_grid25_modes(), 0.05)}
"""name -> (mode centres (K, 2), per-coordinate std), for the mode-coverage metrics."""


def _mixture(name: str, split: str) -> Labeled:
    centres, std = MIXTURES[name]
    n = 50_000 if split == "train" else 2_500
    rng = np.random.default_rng(SPLITS.index(split))
    modes = rng.integers(len(centres), size=n)
    points = centres[modes] + std * rng.standard_normal((n, 2))
    return points.astype(np.float32), modes.astype(np.int64)


def ring8(split: str, seed: int, data_dir: str | None) -> Labeled:
    return _mixture("ring8", split)


def grid25(split: str, seed: int, data_dir: str | None) -> Labeled:
    return _mixture("grid25", split)


def register(register: Any) -> None:
    """Core's datasets, for ``toolkit.builtin``."""
    for name, description in (
        ("digits", "scikit-learn's 8x8 handwritten digits (1,437 train / 360 test), no download"),
        ("digits32", "the digits upscaled to 32x32"),
        ("mnist", "MNIST 28x28 (IDX files from --data-dir, or downloaded)"),
        ("fashion-mnist", "Fashion-MNIST 28x28 (IDX files from --data-dir, or downloaded)"),
        ("cifar10", "CIFAR-10 32x32 colour (binary version from --data-dir, or downloaded)"),
        ("folder", "every image under --data-dir, centre-cropped and resized to 64x64"),
        ("ring8", "2-D mixture of 8 Gaussians on a circle (mode-collapse benchmark)"),
        ("grid25", "2-D mixture of 25 Gaussians on a 5x5 grid (mode-collapse benchmark)"),
    ):
        register(name, f"toolkit.datasets:{name.replace('-', '_')}", description)

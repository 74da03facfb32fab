"""Sample-quality metrics, chosen by dataset.

* 2-D mixtures (``ring8``, ``grid25``), as in the mode-collapse literature (Metz et al.'s
  unrolled GAN, Srivastava et al.'s VEEGAN): each sample is assigned to its nearest mode; it is
  *high quality* if it lies within 3 standard deviations of that mode, and a mode is *covered*
  when it receives at least ``MIN_MODE_SHARE`` of its fair share of the samples as
  high-quality ones (about 20 of ring8's 312 per mode in 2,500 samples): a handful of stray
  points does not count as covering a mode.
* Labelled image datasets: a Frechet distance and an Inception-style score computed with a
  small convolutional classifier trained on the same dataset's training split (once; cached
  in ``~/.cache/toolkit/classifiers``). They are named for what they are, ``FD-digits`` and
  ``IS-digits``, and are comparable only with each other, never with published FID or
  Inception-score values. Real ``FID`` is added when the Inception network's weights are on
  the machine (toolkit_gan.inception; toolkit does not download them).
"""

from __future__ import annotations

import hashlib
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from toolkit import checkpoint
from toolkit.datasets import MIXTURES, cache_dir, load_dataset

MIN_MODE_SHARE = 0.0625
"""A mode counts as covered with at least this fraction of its fair share (1/K of the
samples) in high-quality samples: about 20 of the 312 expected on ring8 with 2,500 samples."""

CLASSIFIER_VERSION = 2
"""Part of the cached classifier's file name. Version 1 trained for a number of epochs that on
8x8 digits came to 120 Adam steps: 96.7% accuracy with torch 2.13, and real digits' IS-digits
7.8 instead of 9.6; version 2 trains for ``CLASSIFIER_STEPS``."""
CLASSIFIER_STEPS = 1_000
"""Adam steps (of ``CLASSIFIER_BATCH`` images, in whole epochs) of the metrics classifier: on
digits 99.2% held-out accuracy; more steps move real digits' IS-digits by about 0.2."""
CLASSIFIER_BATCH = 128


def mode_coverage(samples: np.ndarray, centres: np.ndarray, std: float) -> dict[str, float]:
    """``modes_covered`` (a count) and ``high_quality`` (a fraction) of 2-D samples."""
    distances = np.linalg.norm(samples[:, None, :] - centres[None], axis=2)
    nearest = distances.argmin(1)
    good = distances[np.arange(len(samples)), nearest] <= 3 * std
    counts = np.bincount(nearest[good], minlength=len(centres))
    enough = MIN_MODE_SHARE * len(samples) / len(centres)
    return {"modes_covered": float((counts >= enough).sum()), "high_quality": float(good.mean())}


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)) between Gaussians fitted to two
    feature sets (Heusel et al. 2017's formula, here in a small classifier's feature space)."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    # Dead ReLU features make the covariances singular; a tiny ridge on both keeps the square
    # root defined (as FID implementations do); identical sets still give 0.
    ridge = np.eye(len(cov_a)) * 1e-6
    cov_a, cov_b = cov_a + ridge, cov_b + ridge
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_sqrt_product(cov_a, cov_b))


def trace_sqrt_product(cov_a: np.ndarray, cov_b: np.ndarray) -> float:
    """Tr((S_a S_b)^(1/2)) for symmetric positive semi-definite S_a, S_b. S_a S_b has the
    eigenvalues of the symmetric R S_b R, R = S_a^(1/2), so two symmetric eigendecompositions
    give the trace exactly: real by construction, and at Inception's 2048 dimensions several
    times faster than the general matrix square root of S_a S_b."""
    values, vectors = np.linalg.eigh(cov_a)
    root = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    return float(np.sqrt(np.clip(np.linalg.eigvalsh(root @ cov_b @ root), 0, None)).sum())


def inception_style_score(probabilities: np.ndarray) -> float:
    """exp(E_x KL(p(y|x) || p(y))) (Salimans et al. 2016's Inception score formula) with the
    small classifier's class probabilities: high when samples are confidently classified and
    spread over the classes."""
    marginal = probabilities.mean(0, keepdims=True)
    kl = (probabilities * (np.log(probabilities + 1e-12) - np.log(marginal + 1e-12))).sum(1)
    return float(np.exp(kl.mean()))


class FeatureClassifier(nn.Module):
    """Two 3x3 conv blocks (32, 64 channels, each followed by 2x2 pooling when the image is
    large enough), a 64-feature layer (the space of the Frechet distance), then the classes."""

    FEATURES = 64

    def __init__(self, shape: tuple[int, ...], classes: int) -> None:
        super().__init__()
        channels, side = shape[0], shape[-1]
        layers: list[nn.Module] = []
        for width in (32, 64):
            layers += [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU()]
            if side >= 8:
                layers.append(nn.MaxPool2d(2))
                side //= 2
            channels = width
        self.convs = nn.Sequential(*layers, nn.Flatten())
        self.features = nn.Sequential(nn.Linear(channels * side * side, self.FEATURES), nn.ReLU())
        self.classes = nn.Linear(self.FEATURES, classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.features(self.convs(x))
        return features, self.classes(features)


def train_classifier(images: np.ndarray, labels: np.ndarray, epochs: int, seed: int = 0) -> tuple[FeatureClassifier, float]:
    """Adam on the cross-entropy; returns the model and its training accuracy."""
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = FeatureClassifier(tuple(images.shape[1:]), int(labels.max()) + 1)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = torch.from_numpy(images), torch.from_numpy(labels)
    for _ in range(epochs):
        for batch in torch.randperm(len(x), generator=generator).split(CLASSIFIER_BATCH):
            loss = F.cross_entropy(model(x[batch])[1], y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    with torch.no_grad():
        accuracy = float((model(x)[1].argmax(1) == y).float().mean())
    return model.eval(), accuracy


_CLASSIFIERS: dict[tuple[str, str | None, str], FeatureClassifier | None] = {}


def dataset_classifier(dataset: str, data_dir: str | None) -> FeatureClassifier | None:
    """The cached classifier of a labelled image dataset (trained on first use), or None when
    the dataset has no labels. Memoised per process, so evaluations do not reload the dataset."""
    key = (dataset, data_dir, str(cache_dir()))
    if key not in _CLASSIFIERS:
        _CLASSIFIERS[key] = _load_or_train_classifier(dataset, data_dir)
    return _CLASSIFIERS[key]


def _load_or_train_classifier(dataset: str, data_dir: str | None) -> FeatureClassifier | None:
    images, labels = load_dataset(dataset, "train", 0, data_dir)
    if labels is None or images.ndim != 4:
        return None
    path = cache_dir("classifiers", f"FD-{dataset}-{'x'.join(map(str, images.shape[1:]))}-v{CLASSIFIER_VERSION}.pt")
    model = FeatureClassifier(tuple(images.shape[1:]), int(labels.max()) + 1)
    if path.is_file():
        model.load_state_dict(checkpoint.load(path)["state"])
    else:
        epochs = max(2, math.ceil(CLASSIFIER_STEPS / math.ceil(len(images) / CLASSIFIER_BATCH)))
        model, accuracy = train_classifier(images, labels, epochs)
        checkpoint.save({"format": checkpoint.FORMAT_VERSION, "state": model.state_dict(),
                         "train_accuracy": accuracy, "epochs": epochs}, path)
    return model.eval()


def classifier_outputs(model: FeatureClassifier, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(features, class probabilities) of a batch of images."""
    with torch.no_grad():
        outputs = [model(torch.from_numpy(np.ascontiguousarray(chunk, dtype=np.float32))) for chunk in np.array_split(
            images, max(1, len(images) // 512))]
    features = torch.cat([f for f, _ in outputs]).numpy().astype(np.float64)
    probabilities = torch.cat([F.softmax(c, 1) for _, c in outputs]).numpy().astype(np.float64)
    return features, probabilities


def sample_metrics(dataset: str, data_dir: str | None, samples: np.ndarray, held_out: np.ndarray) -> dict[str, float]:
    """The metrics the dataset supports, for samples from a generator (see the module docstring)."""
    if dataset in MIXTURES:
        centres, std = MIXTURES[dataset]
        return mode_coverage(samples, centres, std)
    from toolkit.plugins import get_registry

    if samples.ndim != 4 or dataset not in get_registry().names("dataset"):
        return {}
    model = dataset_classifier(dataset, data_dir)
    if model is None:
        return {}
    fake_features, fake_probabilities = classifier_outputs(model, samples)
    real_features, _ = classifier_outputs(model, held_out)
    metrics = {f"FD-{dataset}": frechet_distance(real_features, fake_features),
               f"IS-{dataset}": inception_style_score(fake_probabilities)}
    return metrics | real_fid(samples, held_out)


def real_fid(samples: np.ndarray, held_out: np.ndarray) -> dict[str, float]:
    """``FID`` in the Inception network's pool features when its weights are on this machine
    (toolkit_gan.inception), else nothing."""
    from toolkit_gan.inception import inception_features, inception_network, weights_path

    path = weights_path()
    if path is None:
        return {}
    network = inception_network(path)
    # the held-out set is the same at every evaluation of a run: its features (about 6 GFLOPs
    # per image) are computed once, found again by the data's fingerprint
    key = (path, held_out.shape, hashlib.sha1(np.ascontiguousarray(held_out).tobytes()).hexdigest())
    if key not in _REAL_INCEPTION_FEATURES:
        _REAL_INCEPTION_FEATURES[key] = inception_features(network, held_out)
    return {"FID": frechet_distance(_REAL_INCEPTION_FEATURES[key], inception_features(network, samples))}


_REAL_INCEPTION_FEATURES: dict[tuple, np.ndarray] = {}

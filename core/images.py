"""Image grids as PNG files, without torchvision."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def make_grid(images: np.ndarray, columns: int | None = None, padding: int = 2) -> np.ndarray:
    """(N, C, H, W) floats in [0, 1] -> one (H', W', C) uint8 image, row-major, padded."""
    images = np.clip(np.asarray(images, dtype=np.float32), 0.0, 1.0)
    n, c, h, w = images.shape
    columns = columns or int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / columns))
    grid = np.ones((rows * (h + padding) + padding, columns * (w + padding) + padding, c), dtype=np.float32)
    for i, image in enumerate(images):
        r, col = divmod(i, columns)
        top, left = padding + r * (h + padding), padding + col * (w + padding)
        grid[top : top + h, left : left + w] = image.transpose(1, 2, 0)
    return (grid * 255).round().astype(np.uint8)


def save_png(image: np.ndarray, path: str | Path) -> Path:
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(path)
    return path

"""Small numpy helpers shared by the ShapeWorld tests (blur, noise, clean renders of a suite)."""

from __future__ import annotations

import numpy as np

from arscale.shapeworld import render, sample_scene


def gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur (radius ceil(3 sigma), edge-replicated borders); float64 output."""
    radius = max(1, int(np.ceil(3 * sigma)))
    t = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-0.5 * (t / sigma) ** 2)
    k /= k.sum()
    x = image.astype(np.float64)
    pad = np.pad(x, ((radius, radius), (0, 0), (0, 0)), mode="edge")
    x = sum(k[i] * pad[i : i + x.shape[0]] for i in range(k.size))
    pad = np.pad(x, ((0, 0), (radius, radius), (0, 0)), mode="edge")
    return sum(k[i] * pad[:, i : i + x.shape[1]] for i in range(k.size))


def degrade(
    image: np.ndarray, rng: np.random.Generator, sigma: float = 0.6, noise: float = 6.0
) -> np.ndarray:
    """Blur, add Gaussian noise, round and clip back to uint8."""
    x = gaussian_blur(image, sigma) + rng.normal(0.0, noise, size=image.shape)
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def clean_renders(records: list[dict], seed: int = 0):
    """One scene per record (seeded by (seed, index)) and its render."""
    scenes = [sample_scene(r, np.random.default_rng([seed, i])) for i, r in enumerate(records)]
    return scenes, [render(s) for s in scenes]

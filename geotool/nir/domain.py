"""How far an input's colours lie from what a NIR generator was trained on.

A domain is the per-band histogram of unit-scale RGB values (``BINS`` bins over 0..1, values outside
clipped into the end bins). The distance between two domains is the mean over bands of the 1-D
Wasserstein (earth mover's) distance, in unit-scale values: 0.05 means colours shifted by about 5% of
the range on average. A checkpoint stores the pooled training domain and the largest distance of any one
training scene to it; ``generate-nir`` reports each input's distance and warns when it exceeds that
spread by ``OUTSIDE_FACTOR``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BINS = 64
OUTSIDE_FACTOR = 1.5  # an input this many times farther than the farthest training scene is outside the domain
MIN_SPREAD = 0.01  # unit-scale floor of that spread: one training scene has no spread of its own


def histogram(unit_rgb: np.ndarray) -> np.ndarray:
    """``(3, n)`` unit-scale values -> ``(3, BINS)`` per-band counts (float64)."""
    idx = np.clip((np.asarray(unit_rgb, np.float64) * BINS).astype(np.int64), 0, BINS - 1)
    return np.stack([np.bincount(band, minlength=BINS).astype(np.float64) for band in idx])


def distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean over bands of the 1-D Wasserstein distance between histograms ``a`` and ``b`` (unit scale)."""
    pa = a / np.maximum(a.sum(axis=1, keepdims=True), 1e-12)
    pb = b / np.maximum(b.sum(axis=1, keepdims=True), 1e-12)
    return float(np.abs(np.cumsum(pa - pb, axis=1)).sum(axis=1).mean() / BINS)


@dataclass
class TrainingDomain:
    """The pooled training histogram and the farthest training scene's distance to it."""

    histogram: np.ndarray
    spread: float

    @classmethod
    def from_scenes(cls, histograms: list[np.ndarray]) -> "TrainingDomain":
        pooled = np.sum(histograms, axis=0)
        return cls(pooled, max(distance(h, pooled) for h in histograms))

    def as_dict(self) -> dict:
        return {"bins": BINS, "histogram": self.histogram.tolist(), "spread": self.spread}

    @classmethod
    def from_dict(cls, data: dict) -> "TrainingDomain":
        return cls(np.asarray(data["histogram"], np.float64), float(data["spread"]))

    def report(self, hist: np.ndarray) -> dict:
        """The sidecar's ``domain`` record for an input with histogram ``hist``."""
        d = distance(hist, self.histogram)
        limit = OUTSIDE_FACTOR * max(self.spread, MIN_SPREAD)
        return {"distance": round(d, 5), "training_spread": round(self.spread, 5), "limit": round(limit, 5),
                "outside": bool(d > limit)}

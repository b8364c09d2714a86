"""Per-pixel RGB -> NIR baselines: linear least squares and gradient boosting (unit scale)."""

from __future__ import annotations

import numpy as np


class LinearBaseline:
    """NIR = a R + b G + c B + d, fitted by least squares on valid training pixels."""

    def fit(self, rgb: np.ndarray, nir: np.ndarray) -> "LinearBaseline":
        """rgb ``(3, n)``, nir ``(n,)`` unit scale."""
        x = np.vstack([rgb, np.ones(rgb.shape[1])]).T.astype(np.float64)
        self.coef, *_ = np.linalg.lstsq(x, nir.astype(np.float64), rcond=None)
        return self

    def predict(self, rgb: np.ndarray) -> np.ndarray:
        """rgb ``(3, ...)`` -> NIR ``(...)``."""
        flat = rgb.reshape(3, -1).astype(np.float64)
        return (self.coef[:3] @ flat + self.coef[3]).reshape(rgb.shape[1:]).astype(np.float32)


class GBBaseline:
    """Histogram gradient boosting on the three band values of each pixel (no spatial context)."""

    def __init__(self, seed: int = 0, max_iter: int = 200, max_samples: int = 200_000) -> None:
        self.seed, self.max_iter, self.max_samples = seed, max_iter, max_samples

    def fit(self, rgb: np.ndarray, nir: np.ndarray) -> "GBBaseline":
        """rgb ``(3, n)``, nir ``(n,)`` unit scale (subsampled to ``max_samples`` pixels, seeded)."""
        from sklearn.ensemble import HistGradientBoostingRegressor

        rng = np.random.default_rng(self.seed)
        idx = rng.permutation(rgb.shape[1])[: self.max_samples]
        self.model = HistGradientBoostingRegressor(max_iter=self.max_iter, random_state=self.seed)
        self.model.fit(rgb[:, idx].T, nir[idx])
        return self

    def predict(self, rgb: np.ndarray) -> np.ndarray:
        """rgb ``(3, ...)`` -> NIR ``(...)``."""
        return self.model.predict(rgb.reshape(3, -1).T).reshape(rgb.shape[1:]).astype(np.float32)


BASELINES = {"linear": LinearBaseline, "gb": GBBaseline}

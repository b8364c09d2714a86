"""Per-pixel RGB -> NIR baselines: linear least squares and gradient boosting (unit scale).

Both are fitted from training pixels fed in chunks (:meth:`add`, then :meth:`finish`), so a scene can be
streamed strip by strip; :meth:`fit` is the one-chunk shortcut.
"""

from __future__ import annotations

import numpy as np


class LinearBaseline:
    """NIR = a R + b G + c B + d, fitted by least squares on valid training pixels.

    The normal equations ``X^T X`` (4 x 4) and ``X^T y`` are summed in float64 over every pixel; the
    minimum-norm solution equals ``lstsq`` on all pixels (collinear bands included).
    """

    def __init__(self) -> None:
        self._xtx, self._xty = np.zeros((4, 4)), np.zeros(4)

    def add(self, rgb: np.ndarray, nir: np.ndarray) -> "LinearBaseline":
        """Accumulate training pixels: rgb ``(3, n)``, nir ``(n,)`` unit scale."""
        x = np.vstack([rgb, np.ones(rgb.shape[1])]).T.astype(np.float64)
        self._xtx += x.T @ x
        self._xty += x.T @ nir.astype(np.float64)
        return self

    def finish(self) -> "LinearBaseline":
        """Solve for the coefficients of the pixels added so far."""
        self.coef, *_ = np.linalg.lstsq(self._xtx, self._xty, rcond=1e-12)
        return self

    def fit(self, rgb: np.ndarray, nir: np.ndarray) -> "LinearBaseline":
        """rgb ``(3, n)``, nir ``(n,)`` unit scale."""
        return self.add(rgb, nir).finish()

    def predict(self, rgb: np.ndarray) -> np.ndarray:
        """rgb ``(3, ...)`` -> NIR ``(...)``."""
        flat = rgb.reshape(3, -1).astype(np.float64)
        return (self.coef[:3] @ flat + self.coef[3]).reshape(rgb.shape[1:]).astype(np.float32)


class GBBaseline:
    """Histogram gradient boosting on the three band values of each pixel (no spatial context).

    Fitted on a seeded uniform sample of at most ``max_samples`` training pixels: every pixel added gets a
    random key (one seeded stream, so the sample does not depend on how the pixels are chunked) and the
    ``max_samples`` smallest keys are kept, in key order.
    """

    def __init__(self, seed: int = 0, max_iter: int = 200, max_samples: int = 200_000) -> None:
        self.seed, self.max_iter, self.max_samples = seed, max_iter, max_samples
        self._rng = np.random.default_rng(seed)
        self._keys, self._rgb, self._nir = np.zeros(0), np.zeros((3, 0), np.float32), np.zeros(0, np.float32)

    def add(self, rgb: np.ndarray, nir: np.ndarray) -> "GBBaseline":
        """Offer training pixels to the sample: rgb ``(3, n)``, nir ``(n,)`` unit scale."""
        keys = self._rng.random(nir.shape[0])
        if self._keys.size >= self.max_samples:
            new = keys < self._keys.max()
            keys, rgb, nir = keys[new], rgb[:, new], nir[new]
        self._keys = np.concatenate([self._keys, keys])
        self._rgb = np.concatenate([self._rgb, rgb.astype(np.float32)], axis=1)
        self._nir = np.concatenate([self._nir, nir.astype(np.float32)])
        if self._keys.size > self.max_samples:
            self._take(np.argpartition(self._keys, self.max_samples - 1)[: self.max_samples])
        return self

    def _take(self, idx: np.ndarray) -> None:
        self._keys, self._rgb, self._nir = self._keys[idx], self._rgb[:, idx], self._nir[idx]

    def finish(self) -> "GBBaseline":
        """Fit on the sample gathered so far."""
        from sklearn.ensemble import HistGradientBoostingRegressor

        self._take(np.argsort(self._keys, kind="stable"))
        self.model = HistGradientBoostingRegressor(max_iter=self.max_iter, random_state=self.seed)
        self.model.fit(self._rgb.T, self._nir)
        return self

    def fit(self, rgb: np.ndarray, nir: np.ndarray) -> "GBBaseline":
        """rgb ``(3, n)``, nir ``(n,)`` unit scale (subsampled to ``max_samples`` pixels, seeded)."""
        return self.add(rgb, nir).finish()

    def predict(self, rgb: np.ndarray) -> np.ndarray:
        """rgb ``(3, ...)`` -> NIR ``(...)``."""
        return self.model.predict(rgb.reshape(3, -1).T).reshape(rgb.shape[1:]).astype(np.float32)


BASELINES = {"linear": LinearBaseline, "gb": GBBaseline}

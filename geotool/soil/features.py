"""The candidate-cell x feature matrix: checks, standardisation, intercept and expansions.

Columns that are constant over the candidates, or (nearly) linear combinations of other columns, carry
no information for a design and make the maxvol volume zero; they are detected, reported and dropped.
Features are standardised over the candidates (mean 0, std 1), optionally expanded (quadratic / cubic
terms, cell coordinates), and a column of ones (the intercept) is put first, so the design does not
depend on offsets of the covariates.

``expansion="kernel"`` (kernel maxvol) replaces them by Gaussian kernel features against landmarks drawn
at random from the candidates: a row's norm then grows with the density of candidates around it in
covariate space, so maxvol's greedy picks follow the covariate distribution instead of its extremes
(measured in BENCHMARKS.md, Soil).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations_with_replacement
from typing import Literal, Sequence

import numpy as np

Expansion = Literal["linear", "quadratic", "cubic", "kernel"]

KERNEL_MEMORY_BYTES = 1 << 30  # cap on the cells x landmarks float32 kernel matrix


@dataclass
class ColumnReport:
    """Which covariate columns were kept and which were dropped, and why."""

    kept: list[str]
    dropped: dict[str, str] = field(default_factory=dict)

    def warnings(self) -> list[str]:
        """One message per dropped column."""
        return [f"covariate {name} dropped: {why}" for name, why in self.dropped.items()]


def check_columns(values: np.ndarray, names: Sequence[str], rel_tol: float = 1e-6) -> ColumnReport:
    """Detect constant and collinear columns of ``values`` (cells x covariates).

    A column is constant when its standard deviation is below ``rel_tol`` times its mean magnitude (or
    exactly zero). A column is collinear when, after standardisation, its part not explained by the
    columns kept before it (in the given order) has a norm below ``sqrt(rel_tol)`` of its own norm
    (Gram-Schmidt), i.e. it is a linear combination of earlier columns up to rounding.
    """
    names = list(names)
    report = ColumnReport(kept=[])
    basis: list[np.ndarray] = []
    for j, name in enumerate(names):
        col = values[:, j].astype(np.float64)
        std = col.std()
        scale = max(abs(col.mean()), 1.0)
        if not np.isfinite(std) or std <= rel_tol * scale:
            report.dropped[name] = f"constant over the candidate cells (value {col.mean():.6g})"
            continue
        z = (col - col.mean()) / std
        resid = z.copy()
        for q in basis:
            resid -= (q @ resid) * q
        norm = np.linalg.norm(resid)
        if norm <= np.sqrt(rel_tol) * np.linalg.norm(z):
            report.dropped[name] = "collinear with " + ", ".join(report.kept) + " (a linear combination of them)"
            continue
        basis.append(resid / norm)
        report.kept.append(name)
    return report


@dataclass
class FeatureSpace:
    """How raw covariates become maxvol features; fitted on the candidate cells, applied to any cells."""

    names: list[str]
    mean: np.ndarray
    std: np.ndarray
    expansion: Expansion = "linear"
    coords: bool = False
    coord_mean: np.ndarray | None = None
    coord_std: float = 1.0
    poly_mean: np.ndarray | None = None
    poly_std: np.ndarray | None = None
    landmarks: np.ndarray | None = None
    bandwidth: float = 1.0

    @classmethod
    def fit(
        cls,
        values: np.ndarray,
        names: Sequence[str],
        expansion: Expansion = "linear",
        coords: np.ndarray | None = None,
        kernel_landmarks: int = 1000,
        kernel_scale: float = 0.45,
        seed: int = 0,
    ) -> "FeatureSpace":
        """Standardisation constants from the candidates ``values`` (cells x covariates).

        Args:
            coords: ground coordinates (cells x 2, metres) when cell coordinates are to be features;
                they are centred and scaled by one common std so distances stay isotropic.
            kernel_landmarks: for ``expansion="kernel"``, how many candidate cells (a seeded random
                subset, so they follow the covariates' distribution) serve as landmarks; capped so the
                cells x landmarks float32 matrix stays under 1 GiB.
            kernel_scale: Gaussian bandwidth ``h = kernel_scale * sqrt(d)`` in standardised units
                (``d`` = number of standardised features).
            seed: seeds the landmark draw.
        """
        mean = values.mean(axis=0)
        std = values.std(axis=0)
        std[std == 0] = 1.0
        space = cls(list(names), mean, std, expansion)
        if coords is not None:
            cm = coords.mean(axis=0)
            cs = float(np.sqrt(((coords - cm) ** 2).sum(axis=1).mean() / 2)) or 1.0
            space = cls(list(names), mean, std, expansion, True, cm, cs)
        if expansion == "kernel":
            z = space._linear(values, coords)
            cap = max(1, KERNEL_MEMORY_BYTES // (4 * max(len(z), 1)))
            m = int(min(kernel_landmarks, len(z), cap))
            pick = np.sort(np.random.default_rng(seed).choice(len(z), m, replace=False))
            space.landmarks = z[pick]
            space.bandwidth = float(kernel_scale * np.sqrt(z.shape[1]))
        elif expansion != "linear":
            poly = space._products(space._linear(values, coords))
            space.poly_mean = poly.mean(axis=0)
            sd = poly.std(axis=0)
            sd[sd == 0] = 1.0
            space.poly_std = sd
        return space

    def columns(self) -> list[str]:
        """Names of the feature columns, intercept first."""
        base = list(self.names) + (["x", "y"] if self.coords else [])
        if self.expansion == "kernel":
            return [f"rbf{i + 1}" for i in range(len(self.landmarks))]
        cols = ["intercept"] + base
        for degree in (2, 3)[: {"linear": 0, "quadratic": 1, "cubic": 2}[self.expansion]]:
            cols += ["*".join(base[i] for i in combo) for combo in combinations_with_replacement(range(len(base)), degree)]
        return cols

    def transform(self, values: np.ndarray, coords: np.ndarray | None = None, dtype=np.float32) -> np.ndarray:
        """Feature matrix (cells x features) in ``dtype``: intercept, standardised covariates, expansions."""
        z = self._linear(values, coords)
        if self.expansion == "kernel":
            return self._kernel(z, dtype)
        blocks = [np.ones((len(z), 1)), z]
        if self.expansion != "linear":
            # products standardised with the candidates' statistics, so no term dominates by scale alone
            blocks.append((self._products(z) - self.poly_mean) / self.poly_std)
        return np.hstack(blocks).astype(dtype)

    def _kernel(self, z: np.ndarray, dtype, block: int = 65536) -> np.ndarray:
        """Gaussian kernel features exp(-|z - l|^2 / (2 h^2)) against every landmark l, block by block."""
        L = self.landmarks.astype(np.float32)
        out = np.empty((len(z), len(L)), dtype=dtype)
        l2 = (L**2).sum(axis=1)
        g = np.float32(-1.0 / (2.0 * self.bandwidth**2))
        for start in range(0, len(z), block):
            zb = z[start : start + block].astype(np.float32)
            d2 = zb @ L.T  # float32 is plenty for a kernel value
            d2 *= -2.0
            d2 += (zb**2).sum(axis=1)[:, None]
            d2 += l2[None, :]
            np.maximum(d2, 0.0, out=d2)
            d2 *= g
            np.exp(d2, out=d2)
            out[start : start + block] = d2
        return out

    def _linear(self, values: np.ndarray, coords: np.ndarray | None) -> np.ndarray:
        z = (np.asarray(values, np.float64) - self.mean) / self.std
        if self.coords:
            if coords is None:
                raise ValueError("this feature space uses coordinates; pass coords")
            z = np.hstack([z, (coords - self.coord_mean) / self.coord_std])
        return z

    def _products(self, z: np.ndarray) -> np.ndarray:
        degree = {"linear": 1, "quadratic": 2, "cubic": 3}[self.expansion]
        terms = [
            np.prod(z[:, list(combo)], axis=1)
            for d in range(2, degree + 1)
            for combo in combinations_with_replacement(range(z.shape[1]), d)
        ]
        return np.stack(terms, axis=1)

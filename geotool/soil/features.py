"""Candidate cells and the design matrix for soil sampling.

Candidates are the cells valid in every covariate layer (nodata anywhere excludes a cell; nothing is
filled with 0) and inside the field boundary. Their covariate values become the feature matrix:
constant and collinear columns are found and dropped (and reported), columns are standardised, an
intercept column is added (so the design does not depend on offsets), and optionally the features are
expanded (quadratic terms) or joined by the cell coordinates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from geotool.errors import EmptyDataError

Expansion = Literal["linear", "quadratic", "cubic"]
FeatureMode = Literal["kernel", "linear", "quadratic", "cubic"]


@dataclass
class Candidates:
    """Candidate cells of a grid with their covariate values.

    Attributes:
        rows, cols: pixel indices of each candidate.
        values: ``(cells, layers)`` covariate values, float64.
        names: layer names.
        coords_m: ``(cells, 2)`` positions in ground metres (for distances).
    """

    rows: np.ndarray
    cols: np.ndarray
    values: np.ndarray
    names: list[str]
    coords_m: np.ndarray


@dataclass
class FeatureReport:
    """What :func:`design_matrix` did to the columns."""

    used: list[str]
    constant: list[str] = field(default_factory=list)
    collinear: list[str] = field(default_factory=list)

    def warnings(self) -> list[str]:
        """One line per dropped column, for the CLI and the sidecar."""
        lines = [f"covariate {name} is constant over the candidate cells and was left out" for name in self.constant]
        lines += [
            f"covariate {name} is a linear combination of the other covariates (collinear) and was left out"
            for name in self.collinear
        ]
        return lines


def candidate_cells(
    layers: np.ndarray, valid: np.ndarray, names: list[str], pixel_size_m: tuple[float, float], inside: np.ndarray | None = None
) -> Candidates:
    """Cells valid in every layer (and inside ``inside`` when given) with their values.

    Args:
        layers: ``(layers, rows, cols)`` covariates; NaN counts as nodata too.
        valid: ``(rows, cols)`` True where every layer has data.
        pixel_size_m: ground pixel width and height in metres (for distances between cells).
        inside: optional boundary mask.
    """
    ok = valid & np.all(np.isfinite(layers), axis=0)
    if inside is not None:
        ok &= inside
    rows, cols = np.nonzero(ok)
    if len(rows) == 0:
        raise EmptyDataError("no cell is valid in every covariate layer (and inside the boundary); check nodata and --boundary")
    values = layers[:, rows, cols].T.astype(np.float64)
    coords = np.column_stack([cols * pixel_size_m[0], -rows * pixel_size_m[1]]).astype(np.float64)
    return Candidates(rows, cols, values, list(names), coords)


def design_matrix(
    values: np.ndarray,
    names: list[str],
    expansion: Expansion = "linear",
    coords: np.ndarray | None = None,
    rel_tol: float = 1e-9,
) -> tuple[np.ndarray, FeatureReport, list[str]]:
    """Standardised features with an intercept, constant/collinear columns dropped.

    Args:
        values: ``(cells, layers)``.
        names: layer names.
        expansion: ``linear``; ``quadratic`` adds squares and pairwise products of the standardised
            columns; ``cubic`` adds cubes as well.
        coords: ``(cells, 2)`` metres; when given, the standardised coordinates join the features.
        rel_tol: a column whose standard deviation is below ``rel_tol`` x its mean magnitude (or 1) is
            constant; a column whose residual after regression on the previous columns is below
            1e-6 of its norm is collinear.

    Returns:
        ``(cells, features)`` float32 matrix (first column the intercept), the report, feature names.
    """
    cols = [values[:, j] for j in range(values.shape[1])]
    col_names = list(names)
    if coords is not None:
        cols += [coords[:, 0], coords[:, 1]]
        col_names += ["coord_x", "coord_y"]
    report = FeatureReport(used=[])
    kept: list[np.ndarray] = []
    for name, col in zip(col_names, cols):
        std = col.std()
        if std <= rel_tol * max(1.0, float(np.abs(col).mean())):
            report.constant.append(name)
            continue
        z = (col - col.mean()) / std
        if kept:
            basis = np.column_stack([np.ones_like(z)] + kept)
            coef, *_ = np.linalg.lstsq(basis, z, rcond=None)
            if np.linalg.norm(z - basis @ coef) <= 1e-6 * np.linalg.norm(z):
                report.collinear.append(name)
                continue
        kept.append(z)
        report.used.append(name)
    if not kept:
        raise EmptyDataError(
            "every covariate is constant over the candidate cells; give covariates that vary over the field"
        )
    feats = list(kept)
    feat_names = list(report.used)
    if expansion in ("quadratic", "cubic"):
        for i in range(len(kept)):
            for j in range(i, len(kept)):
                feats.append(_standardise(kept[i] * kept[j]))
                feat_names.append(f"{report.used[i]}*{report.used[j]}")
    if expansion == "cubic":
        for i in range(len(kept)):
            feats.append(_standardise(kept[i] ** 3))
            feat_names.append(f"{report.used[i]}^3")
    matrix = np.column_stack([np.ones(len(values))] + feats).astype(np.float32)
    return matrix, report, ["intercept"] + feat_names


def _standardise(col: np.ndarray) -> np.ndarray:
    std = col.std()
    return (col - col.mean()) / std if std > 0 else col - col.mean()


def kernel_features(
    values: np.ndarray,
    n_landmarks: int,
    seed: int = 0,
    bandwidth: float = 0.5,
    chunk: int = 200_000,
) -> np.ndarray:
    """Kernel maxvol features: RBF similarities to landmarks in rank-uniformised covariate space.

    Each column (already cleaned of constant/collinear ones) is replaced by its rank among the candidate
    cells scaled to (0, 1), so heavy tails and outliers (terrain edge artefacts) cannot dominate; the
    landmarks are k-means centres of those ranks (so they follow the data density); a cell's features are
    exp(-d^2 / (2 sigma^2)) to each landmark, sigma = ``bandwidth`` x the median landmark spacing
    (a Nystrom approximation of an RBF kernel). maxvol on these features picks cells that are each
    typical of a different part of the covariate distribution instead of its extremes.
    Measured against polynomial features in bench/bench_soil_design.py.

    Args:
        values: ``(cells, columns)`` covariates (no intercept).
        n_landmarks: number of landmarks (features); twice the sample size by default in soil-sample.
        seed: k-means seed.

    Returns:
        ``(cells, landmarks)`` float32.
    """
    from scipy.stats import rankdata
    from sklearn.cluster import KMeans

    cells = len(values)
    ranks = np.column_stack([(rankdata(values[:, j]) - 0.5) / cells for j in range(values.shape[1])])
    rng = np.random.default_rng(seed)
    sample = ranks if cells <= 20_000 else ranks[rng.choice(cells, 20_000, replace=False)]
    n_unique = len(np.unique(sample, axis=0))
    k = max(1, min(n_landmarks, n_unique))
    centres = KMeans(k, n_init=1, random_state=seed).fit(sample).cluster_centers_
    spacing = np.sqrt(((centres[:, None] - centres[None]) ** 2).sum(-1))
    sigma = bandwidth * float(np.median(spacing[spacing > 0])) if k > 1 else 0.5
    out = np.empty((cells, k), dtype=np.float32)
    c2 = (centres**2).sum(1)
    for start in range(0, cells, chunk):
        block = ranks[start : start + chunk]
        d2 = np.maximum((block**2).sum(1)[:, None] + c2[None] - 2 * block @ centres.T, 0.0)
        out[start : start + chunk] = np.exp(-d2 / (2 * sigma**2))
    return out

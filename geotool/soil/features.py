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

    Values are kept in float32 (the covariates' own precision in practice): at 3e7 cells a float64
    copy of every layer is what pushed soil-sample past memory.
    """
    ok = valid.copy()
    for layer in layers:  # layer by layer: no (layers, rows, cols) boolean temporary
        ok &= np.isfinite(layer)
    if inside is not None:
        ok &= inside
    rows, cols = np.nonzero(ok)
    del ok
    if len(rows) == 0:
        raise EmptyDataError("no cell is valid in every covariate layer (and inside the boundary); check nodata and --boundary")
    # int32 indices halve the two largest O(cells) arrays; grids are far below 2**31 rows or columns
    rows = rows.astype(np.int32)
    cols = cols.astype(np.int32)
    values = np.empty((len(rows), len(layers)), dtype=np.float32)
    for j, layer in enumerate(layers):
        values[:, j] = layer[rows, cols]
    coords = np.empty((len(rows), 2), dtype=np.float64)
    coords[:, 0] = cols * float(pixel_size_m[0])
    coords[:, 1] = rows * -float(pixel_size_m[1])
    return Candidates(rows, cols, values, list(names), coords)


def _column_stats(col: np.ndarray, chunk: int = 1 << 20) -> tuple[float, float]:
    """Mean and standard deviation in float64, chunk by chunk (no float64 copy of the column)."""
    n = len(col)
    total = 0.0
    for start in range(0, n, chunk):
        total += float(np.sum(col[start : start + chunk], dtype=np.float64))
    mean = total / n
    ss = 0.0
    for start in range(0, n, chunk):
        d = col[start : start + chunk].astype(np.float64) - mean
        ss += float(d @ d)
    return mean, float(np.sqrt(ss / n))


def _gram(Z: np.ndarray, chunk: int = 1 << 18) -> np.ndarray:
    """Z^T Z accumulated in float64 over row chunks of a float32 matrix."""
    k = Z.shape[1]
    G = np.zeros((k, k))
    for start in range(0, len(Z), chunk):
        block = Z[start : start + chunk].astype(np.float64)
        G += block.T @ block
    return G


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

    Memory: the output plus O(chunk) float64 work; collinearity is decided from the float64 Gram matrix of
    the standardised columns (residual share 1 - r^T R^-1 r), never from a cells x features float64 copy.
    """
    cols = [values[:, j] for j in range(values.shape[1])]
    col_names = list(names)
    if coords is not None:
        cols += [coords[:, 0], coords[:, 1]]
        col_names += ["coord_x", "coord_y"]
    cells = len(values)
    report = FeatureReport(used=[])
    stats = []
    for name, col in zip(col_names, cols):
        mean, std = _column_stats(col)
        if std <= rel_tol * max(1.0, float(np.mean(np.abs(col), dtype=np.float64))):
            report.constant.append(name)
        else:
            stats.append((name, col, mean, std))
    if not stats:
        raise EmptyDataError(
            "every covariate is constant over the candidate cells; give covariates that vary over the field"
        )
    Z = np.empty((cells, len(stats)), dtype=np.float32)
    for j, (_, col, mean, std) in enumerate(stats):
        np.subtract(col, mean, out=Z[:, j], casting="unsafe")
        Z[:, j] /= np.float32(std)
    R = _gram(Z) / cells  # correlation matrix of the standardised columns
    keep: list[int] = []
    for j, (name, *_rest) in enumerate(stats):
        if keep:
            r = R[keep, j]
            coef = np.linalg.lstsq(R[np.ix_(keep, keep)], r, rcond=None)[0]
            residual = max(R[j, j] - float(r @ coef), 0.0)
            if np.sqrt(residual / R[j, j]) <= 1e-6:
                report.collinear.append(name)
                continue
        keep.append(j)
        report.used.append(name)
    k = len(keep)
    extra: list[tuple[int, ...]] = []
    if expansion in ("quadratic", "cubic"):
        extra += [(i, j) for i in range(k) for j in range(i, k)]
    if expansion == "cubic":
        extra += [(i, i, i) for i in range(k)]
    matrix = np.empty((cells, 1 + k + len(extra)), dtype=np.float32)
    matrix[:, 0] = 1.0
    for out_j, j in enumerate(keep):
        matrix[:, 1 + out_j] = Z[:, j]
    del Z
    feat_names = list(report.used)
    for e, term in enumerate(extra):
        col = matrix[:, 1 + term[0]].copy()
        for t in term[1:]:
            col *= matrix[:, 1 + t]
        mean, std = _column_stats(col)
        col -= np.float32(mean)
        if std > 0:
            col /= np.float32(std)
        matrix[:, 1 + k + e] = col
        u = report.used
        feat_names.append(f"{u[term[0]]}^3" if len(term) == 3 else f"{u[term[0]]}*{u[term[1]]}")
    return matrix, report, ["intercept"] + feat_names


def _standardise(col: np.ndarray) -> np.ndarray:
    std = col.std()
    return (col - col.mean()) / std if std > 0 else col - col.mean()


def _average_ranks(col: np.ndarray) -> np.ndarray:
    """(average 1-based rank - 0.5) / cells of every entry, float32; equal values share their mean rank
    (scipy's ``rankdata`` 'average'), from one argsort instead of rankdata's several O(cells) passes."""
    n = len(col)
    order = np.argsort(col)
    xs = col[order]
    new = np.empty(n, dtype=bool)
    new[0] = True
    np.not_equal(xs[1:], xs[:-1], out=new[1:])
    del xs
    out = np.empty(n, dtype=np.float32)
    if new.all():
        out[order] = np.arange(0.5, n, 1.0) / n
    else:
        starts = np.flatnonzero(new)
        ends = np.r_[starts[1:], n]
        mid = (starts + ends) / (2.0 * n)  # mean of the 0-based ranks start..end-1, + 0.5, over n
        out[order] = mid[np.cumsum(new) - 1]
    return out


def rank_uniformise(values: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """Each column replaced by its average rank among all rows, scaled to (0, 1); float32.

    Ranks make the kernel insensitive to heavy tails and outliers (terrain edge artefacts).

    Args:
        values: ``(cells, columns)``.
        rows: when given, only these rows' ranks are returned, still ranked among all cells (a sorted copy
            of one column at a time and a binary search of the sorted query values: O(cells) memory, and
            faster than an argsort of every cell at 3e7 cells).
    """
    cells = len(values)
    if rows is None:
        ranks = np.empty(values.shape, dtype=np.float32)
        for j in range(values.shape[1]):
            ranks[:, j] = _average_ranks(np.ascontiguousarray(values[:, j]))
        return ranks
    rows = np.asarray(rows)
    ranks = np.empty((len(rows), values.shape[1]), dtype=np.float32)
    for j in range(values.shape[1]):
        sorted_all = np.sort(values[:, j])
        query = values[rows, j]
        order = np.argsort(query)
        q = query[order]  # sorted queries: numpy's binary search reuses the previous position
        lo = np.searchsorted(sorted_all, q, side="left")
        hi = np.searchsorted(sorted_all, q, side="right")
        del sorted_all
        ranks[order, j] = (lo + hi) / (2.0 * cells)  # (average 1-based rank - 0.5) / cells
    return ranks


@dataclass
class KernelMap:
    """RBF features exp(-|x - c|^2 / (2 sigma^2)) to landmark centres ``c`` in the kernel's covariate space."""

    centres: np.ndarray
    sigma: float

    @property
    def size(self) -> int:
        return len(self.centres)

    def transform(self, ranks: np.ndarray, chunk: int = 200_000) -> np.ndarray:
        """``(len(ranks), landmarks)`` float32 features, computed in row chunks."""
        centres = self.centres.astype(np.float32)
        c2 = (centres**2).sum(1)
        out = np.empty((len(ranks), len(centres)), dtype=np.float32)
        scale = np.float32(-1.0 / (2 * self.sigma**2))
        for start in range(0, len(ranks), chunk):
            block = np.asarray(ranks[start : start + chunk], dtype=np.float32)
            d2 = block @ centres.T
            d2 *= -2
            d2 += (block**2).sum(1)[:, None]
            d2 += c2[None]
            np.maximum(d2, 0.0, out=d2)
            d2 *= scale
            np.exp(d2, out=out[start : start + chunk])
        return out


def robust_scale(values: np.ndarray, clip: float = 3.0, rows: np.ndarray | None = None, seed: int = 0,
                 sample: int = 200_000) -> np.ndarray:
    """Robust z-scores clipped to +-``clip``: (x - median) / (IQR / 1.349), float32.

    Median and IQR come from a seeded sample of ``sample`` cells (exact below it), so outliers (terrain
    edge artefacts, DEM pits) neither set the scale nor, after clipping, sit far out on their own.

    Args:
        values: ``(cells, columns)``.
        rows: when given, only these rows are returned (the statistics are still those of every cell).
    """
    cells = len(values)
    rng = np.random.default_rng(seed)
    idx = np.arange(cells) if cells <= sample else np.sort(rng.choice(cells, sample, replace=False))
    ref = np.asarray(values[idx], dtype=np.float64)
    med = np.median(ref, axis=0)
    q1, q3 = np.quantile(ref, [0.25, 0.75], axis=0)
    scale = (q3 - q1) / 1.349
    fallback = ref.std(axis=0)
    scale = np.where(scale > 1e-12, scale, np.where(fallback > 0, fallback, 1.0))
    src = values if rows is None else values[np.asarray(rows)]
    out = np.empty(src.shape, dtype=np.float32)
    for j in range(src.shape[1]):
        col = np.asarray(src[:, j], dtype=np.float32) - np.float32(med[j])
        col /= np.float32(scale[j])
        np.clip(col, -clip, clip, out=col)
        out[:, j] = col
    return out


def normal_scores(values: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """Each column's rank among all cells mapped through the standard normal quantile function, float32
    (rank-based like :func:`rank_uniformise`, so robust to outliers, but tails keep more spread)."""
    from scipy.special import ndtri

    ranks = rank_uniformise(values, rows=rows)
    return ndtri(ranks).astype(np.float32)


def hybrid_scores(values: np.ndarray, rows: np.ndarray | None = None, clip: float = 4.0) -> np.ndarray:
    """Normal scores and clipped z-scores side by side, each half scaled by 1/sqrt(2), float32.

    A squared distance in this space is the mean of the two spaces' squared distances, so an RBF on it is
    the product of an RBF on the normal scores (rank based: skew and outliers cannot stretch it) and one
    on the z-scores (the covariates' own geometry: a long tail is a real difference in environment), the
    z-scores clipped at +-``clip`` so a DEM pit or an edge artefact cannot dominate.

    Args:
        values: ``(cells, columns)`` covariates of every candidate cell (any units: the z-scores are taken
            over all of them).
        rows: when given, only these rows are returned (statistics and ranks still over every cell).
    """
    normal = normal_scores(values, rows=rows)
    src = values if rows is None else values[np.asarray(rows)]
    d = normal.shape[1]
    half = np.float32(np.sqrt(0.5))
    out = np.empty((len(normal), 2 * d), dtype=np.float32)
    np.multiply(normal, half, out=out[:, :d])
    for j in range(d):
        mean, std = _column_stats(np.asarray(values[:, j]))
        z = (np.asarray(src[:, j], dtype=np.float64) - mean) / (std if std > 0 else 1.0)
        out[:, d + j] = np.clip(z, -clip, clip) * half
    return out


def fit_kernel_map(ranks: np.ndarray, n_landmarks: int, seed: int = 0, bandwidth: float = 0.5,
                   spacing: Literal["median", "nn"] = "median") -> KernelMap:
    """Landmarks = k-means centres of (a 20,000-cell seeded sample of) the points; sigma = ``bandwidth`` x
    the median landmark spacing: the median of all pairwise distances (``median``, nearly constant in the
    number of landmarks) or of each landmark's nearest-neighbour distance (``nn``, shrinks as landmarks are
    added, so the kernel narrows with N)."""
    from sklearn.cluster import KMeans

    cells = len(ranks)
    rng = np.random.default_rng(seed)
    sample = ranks if cells <= 20_000 else ranks[np.sort(rng.choice(cells, 20_000, replace=False))]
    sample = np.asarray(sample, dtype=np.float64)
    n_unique = len(np.unique(sample, axis=0))
    k = max(1, min(n_landmarks, n_unique))
    centres = KMeans(k, n_init=1, random_state=seed).fit(sample).cluster_centers_
    dist = np.sqrt(((centres[:, None] - centres[None]) ** 2).sum(-1))
    if k > 1 and spacing == "nn":
        np.fill_diagonal(dist, np.inf)
        near = dist.min(axis=1)
        sigma = bandwidth * float(np.median(near[np.isfinite(near) & (near > 0)]))
    else:
        sigma = bandwidth * float(np.median(dist[dist > 0])) if k > 1 else 0.5
    return KernelMap(centres, sigma)

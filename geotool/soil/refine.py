"""Refinement of a kernel-maxvol design inside its own coverage regions.

maxvol chooses which parts of the covariate space get a point; these steps move a point only within the
region it already covers (the cells whose nearest design point it is, in the kernel's covariate space),
so the coverage maxvol found is kept while something else improves:

- :func:`refine_coverage`: Lloyd rounds (each point to the cell nearest its region's mean).
- :func:`match_marginals`: swaps that bring the design's covariate distributions closer to the field's
  (mean 1-D Wasserstein distance of the standardised covariates, the W/sd of BENCHMARKS.md).

Fixed (legacy) points never move. Every swap honours ``allowed``, ``min_distance`` (ground metres) and,
when a per-cell ``cost`` is given, never raises the design's cost.
"""

from __future__ import annotations

import numpy as np


def _owners(Z: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """For every row of ``Z``: the index (into ``rows``) of its nearest design point."""
    from scipy.spatial import cKDTree

    return cKDTree(Z[rows]).query(Z, k=1)[1]


def _far_enough(coords: np.ndarray | None, min_distance: float, others: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """True for each of ``cells`` at least ``min_distance`` metres from every row in ``others``."""
    if coords is None or min_distance <= 0 or len(others) == 0:
        return np.ones(len(cells), bool)
    d = np.hypot(*(coords[cells][:, None, :] - coords[others][None, :, :]).transpose(2, 0, 1))
    return (d >= min_distance * (1 - 1e-9)).all(axis=1)


def refine_coverage(
    Z: np.ndarray,
    rows: np.ndarray,
    n_fixed: int,
    allowed: np.ndarray,
    rounds: int,
    coords: np.ndarray | None = None,
    min_distance: float = 0.0,
) -> np.ndarray:
    """Lloyd-style coverage rounds in covariate space, started from a design (e.g. maxvol's).

    Each round assigns every cell to its nearest design point; each new (non-fixed) point then moves to
    the allowed cell nearest its group's mean, unless that cell is taken or closer than ``min_distance``
    to another point (then it stays). Fixed points never move but keep their groups.
    """
    from scipy.spatial import cKDTree

    rows = np.asarray(rows, dtype=np.int64).copy()
    cand_idx = np.flatnonzero(allowed)
    tree = cKDTree(Z[cand_idx])
    for _ in range(rounds):
        nearest = _owners(Z, rows)
        counts = np.bincount(nearest, minlength=len(rows))
        sums = np.column_stack([np.bincount(nearest, weights=Z[:, j], minlength=len(rows)) for j in range(Z.shape[1])])
        moved = False
        taken = set(rows.tolist())
        for k in range(n_fixed, len(rows)):
            if counts[k] == 0:
                continue
            _, j = tree.query(sums[k] / counts[k], k=8)
            for c in np.atleast_1d(cand_idx[j]):
                c = int(c)
                if c == rows[k]:
                    break
                if c in taken:
                    continue
                if not _far_enough(coords, min_distance, np.delete(rows, k), np.array([c]))[0]:
                    continue
                taken.discard(int(rows[k]))
                rows[k] = c
                taken.add(c)
                moved = True
                break
        if not moved:
            break
    return rows


def marginal_distance(values: np.ndarray, quantiles: np.ndarray) -> np.ndarray:
    """Mean 1-D Wasserstein distance between designs and the field, per design.

    Args:
        values: ``(designs, n, covariates)`` standardised covariates of each design's n points.
        quantiles: ``(n, covariates)`` the field's quantiles at levels (k + 0.5) / n.

    The design's sorted values are matched to the field's quantiles at the same levels (the n-point
    discretisation of the field's quantile function), so the figure is in standard deviations.
    """
    return np.abs(np.sort(values, axis=1) - quantiles[None]).mean(axis=(1, 2))


def match_marginals(
    X: np.ndarray,
    Z: np.ndarray,
    rows: np.ndarray,
    n_fixed: int,
    allowed: np.ndarray,
    rounds: int,
    coords: np.ndarray | None = None,
    min_distance: float = 0.0,
    cost: np.ndarray | None = None,
    tries: int = 64,
    seed: int = 0,
) -> np.ndarray:
    """Swap points within their coverage regions so the design's marginals match the field's.

    Each round visits every new point once: ``tries`` seeded cells of its region (the allowed cells whose
    nearest design point it is in ``Z``) are tried in its place, and the one that lowers
    :func:`marginal_distance` most replaces it. Rounds stop early when no swap helps.

    Args:
        X: ``(cells, covariates)`` standardised covariates (what the distance is measured on).
        Z: ``(cells, covariates)`` the kernel's covariate space (what the regions are drawn in).
        rows: the design (fixed rows first); ``allowed``: cells a new point may take.
        cost: per-cell cost; a swap never picks a cell dearer than the point it replaces (budgets hold).
    """
    rows = np.asarray(rows, dtype=np.int64).copy()
    n = len(rows)
    if n - n_fixed < 1 or rounds < 1:
        return rows
    rng = np.random.default_rng(seed)
    quantiles = np.quantile(np.asarray(X, dtype=np.float64), (np.arange(n) + 0.5) / n, axis=0)
    owner = _owners(Z, rows)  # regions stay those of maxvol's design: the coverage it chose
    regions = [np.flatnonzero((owner == k) & allowed) for k in range(n)]
    values = np.asarray(X[rows], dtype=np.float64)
    best = float(marginal_distance(values[None], quantiles)[0])
    for _ in range(rounds):
        improved = False
        for k in range(n_fixed, n):
            region = regions[k]
            region = region[~np.isin(region, rows)]
            if cost is not None:
                region = region[cost[region] <= cost[rows[k]]]
            if len(region) == 0:
                continue
            if len(region) > tries:
                region = rng.choice(region, tries, replace=False)
            region = region[_far_enough(coords, min_distance, np.delete(rows, k), region)]
            if len(region) == 0:
                continue
            trial = np.repeat(values[None], len(region), axis=0)
            trial[:, k] = X[region]
            dist = marginal_distance(trial, quantiles)
            i = int(np.argmin(dist))
            if dist[i] < best - 1e-12:
                best = float(dist[i])
                rows[k] = region[i]
                values[k] = X[region[i]]
                improved = True
        if not improved:
            break
    return rows

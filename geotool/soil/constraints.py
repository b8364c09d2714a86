"""Field-team constraints of ``soil-sample``: strata allocation and replacement (backup) sites.

Access buffers, exclusions and the boundary become one mask of allowed cells before selection (see
:mod:`geotool.soil.design`); the cost budget and trade-off live in :func:`geotool.soil.maxvol.maxvol_select`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geotool.errors import ConfigError, InfeasibleError


def allocate(sizes: dict[int, int], n: int, how: str = "proportional") -> dict[int, int]:
    """Points per stratum: ``proportional`` to the allowed cells in it (largest remainder, at least one per
    stratum when ``n`` allows) or ``equal``. Strata without an allowed cell get none.

    Args:
        sizes: allowed candidate cells per stratum label.
        n: new points to allocate.
    """
    labels = [k for k in sorted(sizes) if sizes[k] > 0]
    if not labels:
        raise InfeasibleError("no stratum holds an allowed candidate cell; check --strata against the other constraints")
    if how == "equal":
        weights = np.ones(len(labels))
    elif how == "proportional":
        weights = np.array([sizes[k] for k in labels], dtype=np.float64)
    else:
        raise ConfigError(f"--allocation {how!r}: use proportional, equal or a column of the strata polygons")
    share = weights / weights.sum() * n
    counts = np.floor(share).astype(int)
    if n >= len(labels):
        counts = np.maximum(counts, 1)  # every stratum is visited when there are enough points
    while counts.sum() > n:  # the minimum of one pushed it over: take from the most over-served
        i = int(np.argmax(np.where(counts > 1, counts - share, -np.inf)))
        counts[i] -= 1
    rest = share - counts
    for i in np.argsort(-rest, kind="stable")[: n - counts.sum()]:
        counts[i] += 1
    out = {k: int(c) for k, c in zip(labels, counts)}
    full = {k: c for k, c in out.items() if c > sizes[k]}
    if full:
        k = next(iter(full))
        raise InfeasibleError(f"stratum {k} gets {out[k]} points but has only {sizes[k]} allowed cells; ask for fewer points")
    return out


@dataclass
class Backups:
    """Replacement cells: ``rows`` (candidate rows), ``replaces`` (index into the design), ``rank`` (1 = best)
    and ``distance`` (covariate-space distance to the point replaced, in standard deviations)."""

    rows: np.ndarray
    replaces: np.ndarray
    rank: np.ndarray
    distance: np.ndarray


def find_backups(
    X: np.ndarray,
    design: np.ndarray,
    n_fixed: int,
    k: int,
    allowed: np.ndarray,
    coords: np.ndarray,
    min_distance: float = 0.0,
    strata: np.ndarray | None = None,
    cost: np.ndarray | None = None,
    budget: float | None = None,
    max_tree_cells: int = 2_000_000,
    seed: int = 0,
) -> Backups:
    """For each new design point, ``k`` replacement cells nearly as good and satisfying every constraint.

    "Nearly as good" is nearness in the standardised covariates ``X`` (the replacement represents the same
    part of covariate space). A backup is an allowed cell (boundary, access, exclusions), not in the design
    and not a backup of another point, in the replaced point's stratum, at least ``min_distance`` metres
    from every design point other than the one it replaces, and with the design's cost still within
    ``budget`` after the swap.

    Raises:
        InfeasibleError: a point has fewer than ``k`` such cells.
    """
    from scipy.spatial import cKDTree

    design = np.asarray(design, dtype=np.int64)
    idx = np.flatnonzero(allowed)
    idx = idx[~np.isin(idx, design)]
    if len(idx) > max_tree_cells:  # bounded memory at 3e7 cells; a seeded uniform subset still has near twins
        idx = np.sort(np.random.default_rng(seed).choice(idx, max_tree_cells, replace=False))
    tree = cKDTree(np.asarray(X[idx], dtype=np.float64))
    spent = float(cost[design[n_fixed:]].sum()) if cost is not None else 0.0
    used: set[int] = set()
    out_rows, out_rep, out_rank, out_dist = [], [], [], []
    for pos in range(n_fixed, len(design)):
        p = int(design[pos])
        others = np.delete(design, pos)
        found: list[tuple[int, float]] = []
        m = min(len(idx), 32 * k)
        while True:
            dist, j = tree.query(np.asarray(X[p], dtype=np.float64), k=m)
            dist, j = np.atleast_1d(dist), np.atleast_1d(j)
            cand = idx[j[np.isfinite(dist)]]
            dist = dist[np.isfinite(dist)]
            ok = np.ones(len(cand), dtype=bool)
            if strata is not None:
                ok &= strata[cand] == strata[p]
            if cost is not None and budget is not None:
                ok &= cost[cand] <= budget - (spent - cost[p]) + 1e-9 * max(1.0, abs(budget))
            if min_distance > 0 and len(others):
                d = np.hypot(coords[cand, 0][:, None] - coords[others, 0][None],
                             coords[cand, 1][:, None] - coords[others, 1][None])
                ok &= (d >= min_distance * (1 - 1e-9)).all(axis=1)
            found = [(int(c), float(e)) for c, e, g in zip(cand, dist, ok) if g and int(c) not in used][:k]
            if len(found) == k or m >= len(idx):
                break
            m = min(len(idx), m * 8)
        if len(found) < k:
            raise InfeasibleError(
                f"point {pos + 1} has only {len(found)} of {k} backup cells that satisfy every constraint; "
                "lower --backups or --min-distance, or relax the other constraints"
            )
        for rank, (c, e) in enumerate(found, start=1):
            used.add(c)
            out_rows.append(c)
            out_rep.append(pos)
            out_rank.append(rank)
            out_dist.append(e)
    return Backups(np.asarray(out_rows, dtype=np.int64), np.asarray(out_rep, dtype=np.int64),
                   np.asarray(out_rank, dtype=np.int64), np.asarray(out_dist))

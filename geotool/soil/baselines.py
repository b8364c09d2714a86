"""Baseline sampling designs to compare maxvol against: simple random, cLHS and k-means.

All take the standardised features (no intercept column), keep fixed (legacy) rows, honour the minimum
distance in metres, are reproducible for a seed, and return exactly ``n`` distinct rows or raise
:class:`~geotool.errors.InfeasibleError`.
"""

from __future__ import annotations

import numpy as np

from geotool.errors import InfeasibleError


def _too_close(coords: np.ndarray | None, chosen: list[int], j: int, min_distance: float, skip: int = -1) -> bool:
    if coords is None or min_distance <= 0 or not chosen:
        return False
    others = [c for c in chosen if c != skip]
    if not others:
        return False
    d = np.hypot(*(coords[others] - coords[j]).T)
    return bool((d < min_distance * (1 - 1e-9)).any())


def _infeasible(placed: int, n: int, min_distance: float) -> InfeasibleError:
    return InfeasibleError(
        f"only {placed} of {n} points could be placed with --min-distance {min_distance:g} m; "
        "lower --min-distance or -n, or widen the boundary"
    )


def _start(n_cells: int, n: int, fixed: np.ndarray | None) -> list[int]:
    fixed_list = [] if fixed is None else [int(f) for f in np.unique(fixed)]
    if n < len(fixed_list):
        raise InfeasibleError(f"asked for {n} points but {len(fixed_list)} existing points are kept; ask for more")
    if n > n_cells:
        raise InfeasibleError(f"asked for {n} points but only {n_cells} candidate cells exist")
    return fixed_list


def random_design(
    n_cells: int, n: int, rng: np.random.Generator, fixed=None, coords=None, min_distance: float = 0.0
) -> np.ndarray:
    """Simple random sampling without replacement (sequential rejection for the minimum distance)."""
    chosen = _start(n_cells, n, fixed)
    taken = set(chosen)
    for j in rng.permutation(n_cells):
        if len(chosen) == n:
            break
        j = int(j)
        if j in taken or _too_close(coords, chosen, j, min_distance):
            continue
        chosen.append(j)
        taken.add(j)
    if len(chosen) < n:
        raise _infeasible(len(chosen), n, min_distance)
    return np.asarray(chosen, dtype=np.int64)


def clhs_design(
    X: np.ndarray,
    n: int,
    rng: np.random.Generator,
    fixed=None,
    coords=None,
    min_distance: float = 0.0,
    iterations: int = 5000,
    temperature: float = 1.0,
    cooling: float = 0.999,
    correlation_weight: float = 1.0,
) -> np.ndarray:
    """Conditioned Latin hypercube sampling (Minasny & McBratney 2006) by simulated annealing.

    Objective: sum over variables and quantile strata of |count - 1| (each of the ``n`` strata of every
    variable should hold one sample) plus ``correlation_weight`` x the summed absolute difference between
    the sample's and the population's correlation matrices. Columns that are constant over the
    candidates carry no information and are excluded, so the objective stays finite (a constant column
    would make correlations NaN and stop every swap).

    Args:
        X: ``(cells, variables)`` features.
        n: sample size, fixed rows included.
    """
    X = np.asarray(X, dtype=np.float64)
    cells = len(X)
    chosen = random_design(cells, n, rng, fixed, coords, min_distance)
    n_fixed = 0 if fixed is None else len(np.unique(fixed))
    spread = X.std(axis=0)
    X = X[:, spread > 1e-12 * np.maximum(1.0, np.abs(X).mean(axis=0))]
    k = X.shape[1]
    if k == 0 or n - n_fixed == 0:
        return chosen
    edges = np.quantile(X, np.linspace(0, 1, n + 1)[1:-1], axis=0)  # (n-1, k) inner edges
    strata = np.stack([np.searchsorted(edges[:, v], X[:, v], side="right") for v in range(k)], axis=1)
    pop_corr = np.corrcoef(X, rowvar=False) if k > 1 else np.ones((1, 1))
    pop_corr = np.nan_to_num(pop_corr)

    sample = list(chosen)
    in_sample = np.zeros(cells, dtype=bool)
    in_sample[sample] = True
    counts = np.zeros((k, n), dtype=np.int64)
    for s in sample:
        counts[np.arange(k), strata[s]] += 1
    sums = X[sample].sum(axis=0)
    cross = X[sample].T @ X[sample]

    def corr_error(sums: np.ndarray, cross: np.ndarray) -> float:
        if k < 2:
            return 0.0
        mean = sums / n
        cov = cross / n - np.outer(mean, mean)
        sd = np.sqrt(np.maximum(np.diag(cov), 1e-300))
        corr = cov / np.outer(sd, sd)
        return float(np.abs(corr - pop_corr).sum())

    strata_err = float(np.abs(counts - 1).sum())
    objective = strata_err + correlation_weight * corr_error(sums, cross)
    temp = temperature
    var_idx = np.arange(k)
    for _ in range(iterations):
        pos = int(rng.integers(n_fixed, n))
        if rng.random() < 0.5:
            # replace the point that contributes most to over-filled strata (the "worst" point)
            contrib = (counts[var_idx[None, :], strata[sample[n_fixed:]]] - 1).sum(axis=1)
            pos = n_fixed + int(np.argmax(contrib))
        out = sample[pos]
        j = int(rng.integers(cells))
        if in_sample[j] or _too_close(coords, sample, j, min_distance, skip=out):
            continue
        so, sj = strata[out], strata[j]
        moved = so != sj  # variables whose stratum changes; the others are unaffected
        vm, a_, b_ = var_idx[moved], so[moved], sj[moved]
        before = np.abs(counts[vm, a_] - 1).sum() + np.abs(counts[vm, b_] - 1).sum()
        counts[vm, a_] -= 1
        counts[vm, b_] += 1
        delta_strata = float(np.abs(counts[vm, a_] - 1).sum() + np.abs(counts[vm, b_] - 1).sum() - before)
        new_sums = sums - X[out] + X[j]
        new_cross = cross - np.outer(X[out], X[out]) + np.outer(X[j], X[j])
        new_objective = strata_err + delta_strata + correlation_weight * corr_error(new_sums, new_cross)
        delta = new_objective - objective
        if delta <= 0 or rng.random() < np.exp(-delta / max(temp, 1e-12)):
            sample[pos] = j
            in_sample[out] = False
            in_sample[j] = True
            sums, cross = new_sums, new_cross
            strata_err += delta_strata
            objective = new_objective
        else:
            counts[vm, a_] += 1
            counts[vm, b_] -= 1
        temp *= cooling
    return np.asarray(sample, dtype=np.int64)


def kmeans_design(
    X: np.ndarray, n: int, rng: np.random.Generator, fixed=None, coords=None, min_distance: float = 0.0
) -> np.ndarray:
    """k-means in feature space; each centre snapped to the nearest feasible candidate cell.

    Centres are snapped in order of cluster size (largest first); a cell already taken or too close to
    a chosen point is skipped for the next nearest one.
    """
    from scipy.spatial import cKDTree
    from sklearn.cluster import KMeans, MiniBatchKMeans

    X = np.asarray(X, dtype=np.float64)
    chosen = _start(len(X), n, fixed)
    k = n - len(chosen)
    if k == 0:
        return np.asarray(chosen, dtype=np.int64)
    seed = int(rng.integers(2**31 - 1))
    model = (MiniBatchKMeans(k, random_state=seed, n_init=3, batch_size=4096) if len(X) > 20_000
             else KMeans(k, random_state=seed, n_init=4))
    labels = model.fit_predict(X)
    sizes = np.bincount(labels, minlength=k)
    tree = cKDTree(X)
    taken = set(chosen)
    for c in np.argsort(-sizes, kind="stable"):
        placed = False
        for m in (16, 256, len(X)):
            _, idx = tree.query(model.cluster_centers_[c], k=min(m, len(X)))
            for j in np.atleast_1d(idx):
                j = int(j)
                if j not in taken and not _too_close(coords, chosen, j, min_distance):
                    chosen.append(j)
                    taken.add(j)
                    placed = True
                    break
            if placed:
                break
        if not placed:
            raise _infeasible(len(chosen), n, min_distance)
    return np.asarray(chosen, dtype=np.int64)

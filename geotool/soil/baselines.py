"""Baseline designs behind ``--method``: simple random, conditioned Latin hypercube, k-means.

All take the candidates' standardised covariates ``Z`` (cells x k, no intercept), their ground
positions ``xy`` (metres) and honour the same minimum distance and fixed (legacy) points as maxvol:
exactly ``N`` new distinct cells, or :class:`InfeasibleError` saying how many could be placed.
"""

from __future__ import annotations

import numpy as np

from geotool.soil.maxvol import _Exclusion, _infeasible


def _exclusion(xy: np.ndarray, min_distance: float, fixed_xy: np.ndarray | None) -> _Exclusion:
    excl = _Exclusion(xy, min_distance)
    for fx, fy in (fixed_xy if fixed_xy is not None else np.zeros((0, 2))):
        excl.add(excl.near(fx, fy))
    return excl


def _block(excl: _Exclusion, j: int) -> np.ndarray:
    idx = excl.near_cell(j)
    excl.add(idx)
    return idx


def random_design(
    n_cells: int, n_points: int, xy: np.ndarray, min_distance: float, fixed_xy: np.ndarray | None, seed: int
) -> np.ndarray:
    """Simple random sampling without replacement, rejecting cells too close to earlier points."""
    rng = np.random.default_rng(seed)
    excl = _exclusion(xy, min_distance, fixed_xy)
    chosen: list[int] = []
    for j in rng.permutation(n_cells):
        if len(chosen) == n_points:
            break
        if excl.blocked[j] == 0:
            _block(excl, int(j))
            chosen.append(int(j))
    if len(chosen) < n_points:
        raise _infeasible(len(chosen), n_points, min_distance, 0 if fixed_xy is None else len(fixed_xy))
    return np.asarray(chosen, dtype=np.int64)


def _strata(Z: np.ndarray, n_total: int) -> np.ndarray:
    """Latin-hypercube stratum (0..n_total-1) of every cell for every column, by empirical quantiles.

    Strata come from ranks (ties share their average rank), so a constant or heavily tied column gives a
    well-defined stratum and a finite objective instead of empty quantile bins.
    """
    from scipy.stats import rankdata

    frac = (rankdata(Z, axis=0, method="average") - 0.5) / len(Z)
    return np.minimum((frac * n_total).astype(np.int64), n_total - 1)


def clhs_design(
    Z: np.ndarray,
    n_points: int,
    xy: np.ndarray,
    min_distance: float,
    fixed_Z: np.ndarray | None,
    fixed_xy: np.ndarray | None,
    seed: int,
    iterations: int = 10000,
    temperature: float = 1.0,
    cooling: float = 0.95,
    weights: tuple[float, float] = (1.0, 1.0),
) -> np.ndarray:
    """Conditioned Latin hypercube sampling (Minasny and McBratney 2006) by simulated annealing.

    Objective: ``w1 * sum_j sum_s |eta_js - 1| + w2 * sum |corr(sample) - corr(all)|`` where ``eta_js``
    counts the sample's cells (fixed points included) in the ``s``-th quantile stratum of column ``j``.
    Each iteration swaps one new point for a random feasible cell (half the time the worst-placed point,
    as in the original algorithm) and accepts it with the Metropolis rule; the temperature is multiplied
    by ``cooling`` every ``iterations / 100`` steps. Constant columns give a constant, finite term.
    """
    rng = np.random.default_rng(seed)
    n, k = Z.shape
    L = 0 if fixed_Z is None else len(fixed_Z)
    n_total = n_points + L
    allZ = Z if fixed_Z is None or L == 0 else np.vstack([Z, fixed_Z])
    strata_all = _strata(allZ, n_total)
    strata, fixed_strata = strata_all[:n], strata_all[n:]
    with np.errstate(invalid="ignore", divide="ignore"):
        corr_all = np.nan_to_num(np.corrcoef(Z, rowvar=False)) if k > 1 else np.zeros((1, 1))
    chosen = random_design(n, n_points, xy, min_distance, fixed_xy, int(rng.integers(2**31)))
    excl = _exclusion(xy, min_distance, fixed_xy)
    near_of = [_block(excl, int(j)) for j in chosen]
    counts = np.zeros((k, n_total), dtype=np.int64)
    cols = np.arange(k)
    for s in list(fixed_strata) + [strata[j] for j in chosen]:
        counts[cols, s] += 1
    fixedZ = np.zeros((0, k)) if L == 0 else fixed_Z

    def corr_term(idx: np.ndarray) -> float:
        if k < 2:
            return 0.0
        sample = Z[idx] if L == 0 else np.vstack([fixedZ, Z[idx]])
        centred = sample - sample.mean(axis=0)
        cov = centred.T @ centred
        d = np.sqrt(np.diag(cov))
        d[d == 0] = np.inf  # a constant column in the sample: correlation 0, finite objective
        return float(np.abs(cov / np.outer(d, d) - corr_all).sum())

    def objective(cnt: np.ndarray, idx: np.ndarray) -> float:
        return weights[0] * float(np.abs(cnt - 1).sum()) + weights[1] * corr_term(idx)

    current = objective(counts, chosen)
    best, best_obj = chosen.copy(), current
    temp = temperature
    step_cool = max(iterations // 100, 1)
    for it in range(iterations):
        if it and it % step_cool == 0:
            temp *= cooling
        if rng.random() < 0.5:
            contrib = np.abs(counts[cols[:, None], strata[chosen].T] - 1).sum(axis=0)
            pos = int(np.argmax(contrib))
        else:
            pos = int(rng.integers(n_points))
        old = int(chosen[pos])
        excl.remove(near_of[pos])
        new = -1
        for _ in range(50):  # rejection sampling of a feasible cell: O(1) per try, no scan of all cells
            j = int(rng.integers(n))
            if excl.blocked[j] == 0:
                new = j
                break
        if new < 0:
            excl.add(near_of[pos])
            continue
        counts[cols, strata[old]] -= 1
        counts[cols, strata[new]] += 1
        chosen[pos] = new
        obj = objective(counts, chosen)
        delta = obj - current
        if delta <= 0 or rng.random() < np.exp(-delta / max(temp, 1e-12)):
            current = obj
            near_of[pos] = _block(excl, new)
            if obj < best_obj:
                best, best_obj = chosen.copy(), obj
        else:
            counts[cols, strata[new]] -= 1
            counts[cols, strata[old]] += 1
            chosen[pos] = old
            excl.add(near_of[pos])
    return best


def kmeans_design(
    Z: np.ndarray,
    n_points: int,
    xy: np.ndarray,
    min_distance: float,
    fixed_xy: np.ndarray | None,
    seed: int,
) -> np.ndarray:
    """k-means in feature space; each centre snapped to the nearest feasible cell (distinct, spaced)."""
    from sklearn.cluster import KMeans

    km = KMeans(n_clusters=n_points, n_init=3, random_state=seed).fit(Z)
    excl = _exclusion(xy, min_distance, fixed_xy)
    chosen: list[int] = []
    order = np.argsort(-np.bincount(km.labels_, minlength=n_points), kind="stable")  # big clusters first
    for c in order:
        d = ((Z - km.cluster_centers_[c]) ** 2).sum(axis=1)
        d[excl.blocked != 0] = np.inf
        j = int(np.argmin(d))
        if not np.isfinite(d[j]):
            raise _infeasible(len(chosen), n_points, min_distance, 0 if fixed_xy is None else len(fixed_xy))
        _block(excl, j)
        chosen.append(j)
    return np.asarray(chosen, dtype=np.int64)

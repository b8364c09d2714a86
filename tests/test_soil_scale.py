"""soil-sample's default (kernel) features stay within a memory budget as the field grows (issue #14).

Scaled-down: the budget is a few MiB instead of 1 GiB, so the behaviour at 3e7 cells (features for a
bounded seeded pool, never cells x 2N; no float64 copy of the candidate matrix) shows on 1e5-cell fields.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import sklearn.cluster  # noqa: F401  imported before tracing: importing under tracemalloc takes seconds

from geotool.soil.design import candidate_pool, kernel_maxvol
from geotool.soil.features import design_matrix, rank_uniformise
from geotool.soil.maxvol import design_log_det


def _traced_peak(fn):
    tracemalloc.start()
    try:
        result = fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak


def _field(cells: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    values = np.column_stack([rng.lognormal(0, 1, cells), rng.standard_normal(cells), rng.random(cells)])
    return design_matrix(values.astype(np.float32), ["a", "b", "c"])[0][:, 1:]


def test_kernel_selection_memory_does_not_grow_with_cells_times_landmarks():
    n, budget_mb = 50, 1.0  # 50 landmarks: a full feature matrix of 200,000 cells would be 38 MiB
    peaks = {}
    for cells in (50_000, 200_000):
        X = _field(cells)
        allowed = np.ones(cells, bool)
        allowed[: cells // 10] = False  # a boundary: the pool is drawn from allowed cells only
        (rows, size), peak = _traced_peak(lambda: kernel_maxvol(X, n, fixed=[0, 1], allowed=allowed,
                                                                feature_memory_mb=budget_mb, seed=3))
        assert size == n and len(rows) == n and len(set(rows.tolist())) == n
        assert rows[0] == 0 and rows[1] == 1 and allowed[rows[2:]].all()
        peaks[cells] = peak
    full_features = 200_000 * n * 4
    assert peaks[200_000] < full_features / 4
    # 4x the cells: the growth is O(cells) bookkeeping (ranks of one column, sort buffers), not cells x N
    assert peaks[200_000] - peaks[50_000] < 150_000 * n * 4 / 4


def test_pool_is_every_allowed_cell_when_it_fits_and_a_seeded_subset_otherwise():
    allowed = np.zeros(1000, bool)
    allowed[100:900] = True
    fixed = np.array([5, 950])
    assert np.array_equal(candidate_pool(allowed, fixed, 5000, 0), np.r_[5, np.arange(100, 900), 950])
    small = candidate_pool(allowed, fixed, 100, 0)
    assert len(small) == 102 and {5, 950} <= set(small.tolist()) and allowed[np.setdiff1d(small, fixed)].all()
    assert np.array_equal(small, candidate_pool(allowed, fixed, 100, 0))
    assert not np.array_equal(small, candidate_pool(allowed, fixed, 100, 1))


def test_pool_ranks_are_the_ranks_among_all_cells():
    X = _field(30_000)
    X[:, 1] = np.round(X[:, 1] * 2)  # ties get their average rank
    pool = np.sort(np.random.default_rng(0).choice(30_000, 3000, replace=False))
    assert np.allclose(rank_uniformise(X, rows=pool), rank_uniformise(X)[pool], atol=1e-7)
    from scipy.stats import rankdata

    assert np.allclose(rank_uniformise(X)[:, 1], (rankdata(X[:, 1]) - 0.5) / 30_000, atol=1e-6)


def test_design_log_det_indexes_rows_before_converting():
    A = np.random.default_rng(1).standard_normal((500_000, 8)).astype(np.float32)  # 15 MiB
    rows = np.arange(0, 500_000, 5000)
    value, peak = _traced_peak(lambda: design_log_det(A, rows))
    assert peak < 1 << 20  # a float64 copy of A would be 30 MiB
    sub = A[rows].astype(np.float64)
    assert np.isclose(value, np.linalg.slogdet(sub.T @ sub)[1])


def test_coverage_refinement_keeps_fixed_rows_and_improves_coverage():
    from scipy.spatial import cKDTree

    from geotool.soil.refine import refine_coverage

    rng = np.random.default_rng(2)
    Z = rng.random((5000, 3)).astype(np.float32)
    allowed = Z[:, 0] < 0.9
    start = np.r_[7, np.flatnonzero(allowed)[:19]]  # a poor start: the first allowed rows, clustered nowhere
    start[1:] = np.flatnonzero(allowed)[np.argsort(Z[allowed, 1])[:19]]  # all at low Z[:, 1]: bad coverage
    out = refine_coverage(Z, start, 1, allowed, rounds=10)

    def spread(rows):  # mean distance from a cell to its nearest design point (coverage; lower is better)
        return cKDTree(Z[rows]).query(Z)[0].mean()

    assert out[0] == 7 and len(set(out.tolist())) == 20 and allowed[out[1:]].all()
    assert spread(out) < 0.8 * spread(start)

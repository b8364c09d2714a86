"""Maxvol and baselines: exact N, volume, rank-1 updates, minimum distance, fixed rows, infeasibility."""

from __future__ import annotations

import numpy as np
import pytest

from geotool.errors import InfeasibleError
from geotool.soil.baselines import clhs_design, kmeans_design, random_design
from geotool.soil.features import FeatureSpace, check_columns
from geotool.soil.maxvol import log_volume, maxvol_select


@pytest.fixture
def problem():
    rng = np.random.default_rng(1)
    n = 3000
    Z = rng.uniform(-1, 1, size=(n, 5))
    A = np.hstack([np.ones((n, 1)), Z]).astype(np.float32)
    xy = rng.uniform(0, 2000, size=(n, 2))
    return A, Z, xy


def min_pairwise(p: np.ndarray) -> float:
    d = np.sqrt(((p[:, None] - p[None]) ** 2).sum(-1))
    np.fill_diagonal(d, np.inf)
    return float(d.min())


@pytest.mark.parametrize("n", [3, 6, 40])
def test_exact_n_distinct_and_better_than_random(problem, n):
    A, _, xy = problem
    sel = maxvol_select(A, n, xy)
    assert len(sel.indices) == n == len(set(sel.indices.tolist()))
    rng = np.random.default_rng(0)
    random_vols = [log_volume(A[rng.choice(len(A), n, replace=False)]) for _ in range(50)]
    assert sel.log_volume > max(random_vols)


def test_square_maxvol_reaches_dominance(problem):
    A, _, xy = problem
    sel = maxvol_select(A, A.shape[1], xy, tol=0.01)
    B = A.astype(np.float64) @ np.linalg.inv(A[sel.indices].astype(np.float64))
    assert np.abs(B).max() <= 1.01 + 1e-4


def test_rectangular_matches_recomputed_leverages(problem):
    """The greedy step with rank-1 updates equals the textbook step that recomputes C = A A_S^+."""
    A, _, xy = problem
    A = A[:400].astype(np.float64)
    sel = maxvol_select(A, 12, xy[:400])
    idx = list(sel.indices[: A.shape[1]])
    for j in sel.indices[A.shape[1]:]:
        C = A @ np.linalg.pinv(A[idx])
        lev = (C * C).sum(axis=1)
        lev[idx] = -np.inf
        assert int(np.argmax(lev)) == j
        idx.append(j)


def test_min_distance_honoured_including_swaps(problem):
    A, _, xy = problem
    for n in (4, 6, 25):
        sel = maxvol_select(A, n, xy, min_distance=150.0)
        assert min_pairwise(xy[sel.indices]) >= 150.0


def test_fixed_rows_kept_and_spaced(problem):
    A, _, xy = problem
    fixed = [0, 1, 2]
    sel = maxvol_select(A, 10, xy, min_distance=100.0, fixed_rows=A[fixed], fixed_xy=xy[fixed])
    assert not set(fixed) & set(sel.indices.tolist())
    assert min_pairwise(np.vstack([xy[fixed], xy[sel.indices]])[[*range(3)] + list(range(3, 13))]) > 0
    d = np.sqrt(((xy[sel.indices][:, None] - xy[fixed][None]) ** 2).sum(-1))
    assert d.min() >= 100.0


def test_infeasible_says_how_many(problem):
    A, _, xy = problem
    with pytest.raises(InfeasibleError, match=r"only \d+ of 500 points"):
        maxvol_select(A, 500, xy, min_distance=300.0)


def test_baselines_exact_spaced_and_deterministic(problem):
    A, Z, xy = problem
    for fn in (
        lambda s: random_design(len(Z), 15, xy, 100.0, None, s),
        lambda s: clhs_design(Z, 15, xy, 100.0, None, None, s, iterations=300),
        lambda s: kmeans_design(Z, 15, xy, 100.0, None, s),
    ):
        a, b = fn(7), fn(7)
        assert np.array_equal(a, b)
        assert len(set(a.tolist())) == 15
        assert min_pairwise(xy[a]) >= 100.0


def test_clhs_improves_strata_with_a_constant_column():
    rng = np.random.default_rng(3)
    Z = np.hstack([rng.normal(size=(2000, 2)), np.full((2000, 1), 4.2)])  # constant column
    xy = rng.uniform(0, 1000, (2000, 2))
    from geotool.soil.baselines import _strata

    strata = _strata(Z[:, :2], 10)
    def spread(idx):
        return sum(np.abs(np.bincount(strata[idx, j], minlength=10) - 1).sum() for j in range(2))
    start = random_design(2000, 10, xy, 0.0, None, 5)
    best = clhs_design(Z, 10, xy, 0.0, None, None, 5, iterations=2000)
    assert spread(best) < spread(start)  # the annealing swapped and improved the hypercube


def test_column_checks_and_expansion():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=500), rng.normal(size=500)
    values = np.column_stack([a, np.full(500, 3.0), b, 2 * a - b + 1])
    rep = check_columns(values, ["a", "const", "b", "combo"])
    assert rep.kept == ["a", "b"]
    assert "constant" in rep.dropped["const"] and "collinear" in rep.dropped["combo"]
    space = FeatureSpace.fit(values[:, [0, 2]], ["a", "b"], "quadratic")
    X = space.transform(values[:, [0, 2]])
    assert X.shape == (500, 1 + 2 + 3) and X.dtype == np.float32
    assert space.columns() == ["intercept", "a", "b", "a*a", "a*b", "b*b"]
    assert np.allclose(X[:, 1:].mean(axis=0), 0, atol=1e-5) and np.allclose(X[:, 0], 1)
    # transform is a fixed map: a subset transforms to the same rows
    assert np.allclose(space.transform(values[:10, [0, 2]]), X[:10])


def test_kernel_maxvol_follows_the_distribution_not_its_extremes():
    rng = np.random.default_rng(2)
    bulk = rng.normal(size=(1900, 2))
    tail = rng.normal(loc=6.0, scale=1.5, size=(100, 2))  # 5 % of the cells, far out
    values = np.vstack([bulk, tail])
    xy = rng.uniform(0, 1000, (2000, 2))
    picks = {}
    for expansion in ("linear", "kernel"):
        space = FeatureSpace.fit(values, ["a", "b"], expansion, kernel_landmarks=300, seed=0)
        A = space.transform(values)
        picks[expansion] = maxvol_select(A, 20, xy).indices
    assert FeatureSpace.fit(values, ["a", "b"], "kernel", kernel_landmarks=300).transform(values).shape == (2000, 300)
    in_tail = {k: int((v >= 1900).sum()) for k, v in picks.items()}
    # D-optimal on linear features: about half the picks in a tail holding 5 % of the cells;
    # kernel maxvol stays much closer to the data's proportions (it still covers the tail's spread)
    assert in_tail["linear"] >= 8
    assert in_tail["kernel"] <= in_tail["linear"] - 3
    again = FeatureSpace.fit(values, ["a", "b"], "kernel", kernel_landmarks=300, seed=0).transform(values)
    assert np.array_equal(again, FeatureSpace.fit(values, ["a", "b"], "kernel", kernel_landmarks=300, seed=0).transform(values))

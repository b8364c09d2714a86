"""Refinement of a design inside its coverage regions (geotool.soil.refine)."""

import numpy as np
from scipy.spatial import cKDTree

from geotool.soil.refine import marginal_distance, match_marginals


def _field(seed=0, cells=6000):
    rng = np.random.default_rng(seed)
    X = np.column_stack([rng.standard_normal(cells), rng.exponential(size=cells), rng.random(cells)])
    X = (X - X.mean(0)) / X.std(0)
    coords = rng.random((cells, 2)) * 1000.0  # metres
    return X, coords


def _distance(X, rows):
    n = len(rows)
    q = np.quantile(X, (np.arange(n) + 0.5) / n, axis=0)
    return float(marginal_distance(X[rows][None], q)[0])


def _extremes(X, n, allowed):
    """A deliberately unrepresentative design: the allowed cells farthest from the centre."""
    far = np.argsort(-(X**2).sum(1))
    return far[allowed[far]][:n]


def test_matching_brings_the_marginals_closer_and_keeps_fixed_points_and_regions():
    X, _ = _field()
    allowed = X[:, 2] < 1.2
    start = np.r_[5, _extremes(X, 24, allowed)]
    out = match_marginals(X, X, start, 1, allowed, rounds=3, seed=0)
    assert out[0] == 5
    assert len(set(out.tolist())) == 25 and allowed[out[1:]].all()
    assert _distance(X, out) < 0.85 * _distance(X, start)
    owner = cKDTree(X[start]).query(X[out])[1]  # each point stays in the region it covered
    assert (owner == np.arange(25)).all()


def test_matching_is_reproducible_for_a_seed():
    X, _ = _field(1)
    allowed = np.ones(len(X), bool)
    start = _extremes(X, 20, allowed)
    a = match_marginals(X, X, start, 0, allowed, rounds=2, seed=3)
    b = match_marginals(X, X, start, 0, allowed, rounds=2, seed=3)
    assert (a == b).all()


def test_matching_honours_the_minimum_distance():
    X, coords = _field(2)
    allowed = np.ones(len(X), bool)
    start = []
    for row in np.argsort(-(X**2).sum(1)):  # extremes at least 150 m apart
        if all(np.hypot(*(coords[row] - coords[s])) >= 150 for s in start):
            start.append(row)
        if len(start) == 20:
            break
    out = match_marginals(X, X, np.array(start), 0, allowed, rounds=3, coords=coords, min_distance=150.0)
    assert not (out == np.array(start)).all()  # it did move points
    d = np.hypot(*(coords[out][:, None] - coords[out][None]).transpose(2, 0, 1))
    np.fill_diagonal(d, np.inf)
    assert d.min() >= 150.0 * (1 - 1e-9)


def test_matching_never_raises_any_point_s_cost():
    X, _ = _field(3)
    allowed = np.ones(len(X), bool)
    cost = np.random.default_rng(4).random(len(X)) * 10
    start = _extremes(X, 20, allowed)
    out = match_marginals(X, X, start, 0, allowed, rounds=3, cost=cost)
    assert (cost[out] <= cost[start]).all()
    assert _distance(X, out) < _distance(X, start)

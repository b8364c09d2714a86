"""Maxvol selection of rows (candidate cells) from a tall feature matrix, written from scratch in NumPy.

The design is the set of rows whose submatrix has (locally) maximal volume: for ``k`` rows and ``r``
features, ``sqrt(det(A_S A_S^T))`` when ``k <= r`` and ``sqrt(det(A_S^T A_S))`` when ``k >= r``
(the D-criterion). Three phases:

1. **Greedy start** (pivoted Gram-Schmidt, i.e. column-pivoted QR of ``A^T``): fixed rows first, then the
   row with the largest residual norm outside the span of the rows chosen so far, until ``r`` rows (or
   ``N`` when ``N < r``; this greedy is the design for ``N < r``).
2. **Square maxvol** (Goreinov et al. 2010): ``B = A A_S^{-1}`` (cells x r); while some ``|B[i, k]| >
   1 + tol`` swap row ``i`` in for the (non-fixed) ``k``-th chosen row, which multiplies the volume by
   ``|B[i, k]|``; ``B`` is updated by a rank-1 formula, never recomputed.
3. **Greedy rectangular maxvol** (Mikhalev and Oseledets 2018): add the row with the largest
   ``||c_i||^2`` where ``C = A A_S^+`` is the coefficient matrix; adding row ``j`` multiplies
   ``det(A_S^T A_S)`` by ``1 + ||c_j||^2``. Because ``||c_i||^2 = a_i^T (A_S^T A_S)^{-1} a_i`` (the
   leverage), only the ``r x r`` inverse Gram matrix and the vector of leverages are kept and updated by
   Sherman-Morrison: ``O(cells * r)`` time per added row, and no ``cells x N`` matrix is ever re-stacked.

Memory: the float32 feature matrix plus ``B`` (r x cells, float32, square phase only) and a few vectors of
length ``cells``, which is within ``O(cells * N)`` float32 for ``N >= r``.

A minimum distance ``D`` (ground metres) is honoured throughout: a candidate closer than ``D`` to any
chosen or fixed point is never chosen, including during square-maxvol swaps (where the point being
swapped out no longer counts). Fixed (legacy) rows need not be candidates; they enter first and are
never swapped out. The result has exactly ``N`` new rows, or :class:`InfeasibleError` says how many
could be placed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from geotool.errors import InfeasibleError

_SAME_CELL_M = 1e-6  # with no minimum distance, only the very same cell is excluded (no duplicates)


@dataclass
class Selection:
    """Chosen candidate rows in pick order, and what happened on the way."""

    indices: np.ndarray
    swaps: int = 0
    log_volume: float = float("nan")
    phases: dict[str, int] = field(default_factory=dict)


class _Exclusion:
    """Counts, for every candidate, how many chosen/fixed points lie closer than the minimum distance."""

    def __init__(self, xy: np.ndarray, min_distance: float) -> None:
        self.x = np.ascontiguousarray(xy[:, 0], dtype=np.float64)
        self.y = np.ascontiguousarray(xy[:, 1], dtype=np.float64)
        self.d2 = max(float(min_distance), _SAME_CELL_M) ** 2
        self.blocked = np.zeros(len(xy), dtype=np.int32)

    def near(self, x0: float, y0: float) -> np.ndarray:
        """Indices of candidates closer than the minimum distance to (x0, y0)."""
        d = self.x - x0
        np.multiply(d, d, out=d)
        e = self.y - y0
        np.multiply(e, e, out=e)
        d += e
        return np.flatnonzero(d < self.d2)

    def near_cell(self, j: int) -> np.ndarray:
        """Candidates to exclude once candidate ``j`` is chosen (always including ``j`` itself)."""
        if self.d2 <= _SAME_CELL_M**2:
            return np.array([j], dtype=np.int64)  # no minimum distance: only the cell itself
        idx = self.near(self.x[j], self.y[j])
        return idx if j in idx else np.append(idx, j)

    def add(self, idx: np.ndarray) -> None:
        self.blocked[idx] += 1

    def remove(self, idx: np.ndarray) -> None:
        self.blocked[idx] -= 1

    def free(self) -> np.ndarray:
        return self.blocked == 0


def _infeasible(placed: int, wanted: int, min_distance: float, fixed: int) -> InfeasibleError:
    where = f" and from the {fixed} existing point(s)" if fixed else ""
    return InfeasibleError(
        f"only {placed} of {wanted} points could be placed at least {min_distance:g} m apart from each other{where} "
        f"among the candidate cells; lower -n or --min-distance, or enlarge the area"
    )


def maxvol_select(
    A: np.ndarray,
    n_points: int,
    xy: np.ndarray,
    min_distance: float = 0.0,
    fixed_rows: np.ndarray | None = None,
    fixed_xy: np.ndarray | None = None,
    tol: float = 0.05,
    max_swaps: int | None = None,
) -> Selection:
    """Choose ``n_points`` new rows of ``A`` by square then greedy rectangular maxvol.

    Args:
        A: candidate feature matrix (cells x r), float32 or float64, full column rank.
        n_points: number of new rows to choose (exactly this many, or InfeasibleError).
        xy: candidate positions in ground metres (cells x 2), for the minimum distance.
        min_distance: minimum distance in metres between any two points (new or fixed).
        fixed_rows: feature rows of existing points (L x r) that stay in the design.
        fixed_xy: their positions in ground metres (L x 2).
        tol: square maxvol stops when no ``|B| > 1 + tol``.
        max_swaps: cap on square-maxvol swaps (default 100 * r).

    Returns:
        :class:`Selection` with the chosen candidate indices in pick order.
    """
    n, r = A.shape
    fixed_rows = np.zeros((0, r), A.dtype) if fixed_rows is None else np.asarray(fixed_rows, A.dtype)
    fixed_xy = np.zeros((0, 2)) if fixed_xy is None else np.asarray(fixed_xy, np.float64)
    L = len(fixed_rows)
    excl = _Exclusion(xy, min_distance)
    for fx, fy in fixed_xy:
        excl.add(excl.near(fx, fy))

    chosen: list[int] = []
    near_of: list[np.ndarray] = []

    score: np.ndarray | None = None  # the current phase's criterion, -inf where excluded

    def take(j: int) -> None:
        idx = excl.near_cell(j)
        excl.add(idx)
        if score is not None:
            score[idx] = -np.inf
        chosen.append(j)
        near_of.append(idx)

    # -- phase 1: pivoted Gram-Schmidt up to rank r --------------------------------------------------
    A64_norm2 = np.einsum("ij,ij->i", A, A, dtype=np.float64)
    resid = A64_norm2.copy()
    basis: list[np.ndarray] = []
    eps = 1e-10 * max(float(A64_norm2.max()), 1.0)

    def add_to_basis(a: np.ndarray) -> bool:
        v = a.astype(np.float64)
        for q in basis:
            v -= (q @ v) * q
        nv = np.linalg.norm(v)
        if nv * nv <= eps:
            return False
        q = v / nv
        basis.append(q)
        proj = A @ q.astype(A.dtype)
        np.subtract(resid, proj.astype(np.float64) ** 2, out=resid)
        return True

    for row in fixed_rows:
        if len(basis) < r:
            add_to_basis(row)
    score = resid  # residuals double as the phase-1 score: excluded cells are set to -inf
    score[~excl.free()] = -np.inf
    while len(basis) < r and len(chosen) < n_points:
        j = int(np.argmax(score))
        if not np.isfinite(score[j]):
            raise _infeasible(len(chosen), n_points, min_distance, L)
        if score[j] <= eps:
            break  # the feasible candidates span fewer than r dimensions: continue regularised below
        take(j)
        add_to_basis(A[j])
    score = None
    phases = {"greedy_start": len(chosen)}

    # -- phase 2: square maxvol swaps ------------------------------------------------------------------
    swaps = 0
    if L + len(chosen) == r and len(basis) == r and len(chosen) > 0:
        swaps = _square_swaps(A, fixed_rows, chosen, near_of, excl, tol, max_swaps or 100 * r)
    phases["square_swaps"] = swaps

    # -- phase 3: greedy rectangular maxvol -----------------------------------------------------------
    if len(chosen) < n_points:
        S = np.vstack([fixed_rows.astype(np.float64), A[chosen].astype(np.float64)])
        G = S.T @ S
        if len(basis) < r:  # rank-deficient so far: a tiny ridge keeps the Gram matrix invertible
            G += np.eye(r) * 1e-8 * max(np.trace(G), 1.0)
        M = np.linalg.inv(G)
        # leverages ||c_i||^2 = a_i^T M a_i; excluded cells are -inf and stay so under the updates
        score = np.einsum("ij,ij->i", A @ M.astype(A.dtype), A).astype(A.dtype)
        score[~excl.free()] = -np.inf
        while len(chosen) < n_points:
            j = int(np.argmax(score))
            if not np.isfinite(score[j]):
                raise _infeasible(len(chosen), n_points, min_distance, L)
            u = M @ A[j].astype(np.float64)
            denom = 1.0 + score[j]
            w = A @ u.astype(A.dtype)  # c-update of every cell: one pass over A
            np.multiply(w, w, out=w)
            w /= A.dtype.type(denom)
            score -= w
            M -= np.outer(u, u) / denom
            take(j)
        score = None
        phases["rectangular"] = n_points - phases["greedy_start"]
    S = np.vstack([fixed_rows.astype(np.float64), A[chosen].astype(np.float64)])
    return Selection(np.asarray(chosen, dtype=np.int64), swaps, log_volume(S), phases)


def _square_swaps(
    A: np.ndarray,
    fixed_rows: np.ndarray,
    chosen: list[int],
    near_of: list[np.ndarray],
    excl: _Exclusion,
    tol: float,
    max_swaps: int,
) -> int:
    """Square maxvol on the r chosen rows (fixed rows first, never swapped); edits ``chosen`` in place."""
    L = len(fixed_rows)
    sq = np.vstack([fixed_rows.astype(np.float64), A[chosen].astype(np.float64)])
    # B = A A_sq^{-1} is kept transposed (r x cells) so that each column of B is contiguous
    Bt = np.ascontiguousarray((np.linalg.inv(sq).T.astype(A.dtype)) @ A.T)
    r = Bt.shape[0]
    swaps = 0
    while swaps < max_swaps:
        freef = excl.free().astype(A.dtype)
        best_val, best_i, best_k = 1.0 + tol, -1, -1
        for k in range(len(chosen)):
            col = np.abs(Bt[L + k])
            masked = col * freef
            i = int(np.argmax(masked))
            v = float(masked[i])
            # cells blocked only by the point being swapped out are allowed for this position
            alone = near_of[k][excl.blocked[near_of[k]] == 1]
            if len(alone):
                a = int(alone[np.argmax(col[alone])])
                if col[a] > v and a != chosen[k]:
                    i, v = a, float(col[a])
            if v > best_val:
                best_val, best_i, best_k = v, i, k
        if best_i < 0:
            break
        kk = best_k + L  # row of Bt
        row = Bt[:, best_i].astype(np.float64)  # B[i, :]
        pivot = row[kk]
        row[kk] -= 1.0
        colk = Bt[kk].copy()  # B[:, k]
        for t in range(r):  # B -= B[:, k] (B[i, :] - e_k) / B[i, k], one contiguous row at a time
            if row[t] != 0.0:
                Bt[t] -= A.dtype.type(row[t] / pivot) * colk
        excl.remove(near_of[best_k])
        idx = excl.near_cell(best_i)
        excl.add(idx)
        chosen[best_k] = best_i
        near_of[best_k] = idx
        swaps += 1
    return swaps


def log_volume(S: np.ndarray) -> float:
    """Log-determinant D-criterion of a design matrix S (k x r): log det(S^T S), or log det(S S^T) if k < r."""
    S = np.asarray(S, np.float64)
    G = S.T @ S if S.shape[0] >= S.shape[1] else S @ S.T
    sign, logdet = np.linalg.slogdet(G)
    return float(logdet) if sign > 0 else float("-inf")

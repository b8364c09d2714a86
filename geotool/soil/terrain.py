"""Terrain covariates from a DEM: slope, aspect (sin, cos), curvature, flow accumulation and TWI.

Units: elevations in metres; pixel sizes are converted to metres *on the ground* first
(:func:`ground_pixel_size`), so a DEM in Web Mercator (EPSG:3857), whose map metres are 1/cos(latitude)
ground metres, or in degrees, gives true slopes. Nodata cells stay nodata (NaN) in every output.

Flow routing: depressions are filled by priority-flood with a small epsilon (Barnes et al. 2014), which
also orders the cells from outlets to ridges; flow accumulation follows that order with multiple flow
direction (Freeman 1991, exponent 1.1, the usual choice for TWI) or single D8 steepest descent.
TWI = ln(a / tan b), a = specific catchment area (upslope area per unit contour width, m), b = slope.
"""

from __future__ import annotations

import heapq
from typing import Literal

import numpy as np

from geotool.io.raster import Grid

FlowMethod = Literal["mfd", "d8"]
TERRAIN_LAYERS = ("slope", "aspect", "curvature", "twi")

# 8 neighbours: (drow, dcol)
_OFFSETS = np.array([(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)])


def ground_pixel_size(grid: Grid) -> tuple[float, float]:
    """Pixel width and height in ground metres at the grid centre.

    Geographic CRSs use the local metres per degree; projected CRSs are corrected by their scale
    factor at the centre (e.g. 1/cos(lat) for Web Mercator; about 1 for UTM).
    """
    from pyproj import CRS as ProjCRS
    from pyproj import Proj, Transformer

    crs = ProjCRS.from_user_input(grid.crs.to_wkt())
    xres, yres = grid.res
    left, bottom, right, top = grid.bounds
    cx, cy = (left + right) / 2, (bottom + top) / 2
    if crs.is_geographic:
        lat = np.radians(cy)
        m_per_deg_lat = 111132.92 - 559.82 * np.cos(2 * lat) + 1.175 * np.cos(4 * lat)
        m_per_deg_lon = 111412.84 * np.cos(lat) - 93.5 * np.cos(3 * lat)
        return float(xres * m_per_deg_lon), float(yres * m_per_deg_lat)
    lon, lat = Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(cx, cy)
    factors = Proj(crs).get_factors(lon, lat)
    unit = crs.axis_info[0].unit_conversion_factor if crs.axis_info else 1.0
    return float(xres * unit / factors.parallel_scale), float(yres * unit / factors.meridional_scale)


def _gradients(dem: np.ndarray, dx: float, dy: float) -> tuple[np.ndarray, np.ndarray]:
    """dz/dx (east) and dz/dy (north) by Horn's 3x3 method; NaN where any neighbour is NaN.

    Edge cells use the nearest valid neighbour (edge replication), so the border is not lost.
    """
    z = np.pad(dem, 1, mode="edge")
    # replace NaN neighbours by the centre value so a cell next to nodata keeps a slope estimate
    centre = np.pad(dem, 1, mode="edge")
    win = {}
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            shifted = z[1 + dr : 1 + dr + dem.shape[0], 1 + dc : 1 + dc + dem.shape[1]]
            win[(dr, dc)] = np.where(np.isnan(shifted), centre[1:-1, 1:-1], shifted)
    dzdx = ((win[(-1, 1)] + 2 * win[(0, 1)] + win[(1, 1)]) - (win[(-1, -1)] + 2 * win[(0, -1)] + win[(1, -1)])) / (8 * dx)
    dzdy = ((win[(-1, -1)] + 2 * win[(-1, 0)] + win[(-1, 1)]) - (win[(1, -1)] + 2 * win[(1, 0)] + win[(1, 1)])) / (8 * dy)
    invalid = np.isnan(dem)
    dzdx[invalid] = np.nan
    dzdy[invalid] = np.nan
    return dzdx, dzdy


def slope_tan(dem: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """tan(slope), dimensionless (rise over run)."""
    dzdx, dzdy = _gradients(dem, dx, dy)
    return np.hypot(dzdx, dzdy)


def slope_degrees(dem: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """Slope in degrees."""
    return np.degrees(np.arctan(slope_tan(dem, dx, dy)))


def aspect_sin_cos(dem: np.ndarray, dx: float, dy: float) -> tuple[np.ndarray, np.ndarray]:
    """Sine and cosine of the aspect (downslope direction, clockwise from north); 0, 0 on flat cells."""
    dzdx, dzdy = _gradients(dem, dx, dy)
    norm = np.hypot(dzdx, dzdy)
    with np.errstate(invalid="ignore", divide="ignore"):
        sin_a = np.where(norm > 0, -dzdx / norm, 0.0)  # downslope east component
        cos_a = np.where(norm > 0, -dzdy / norm, 0.0)  # downslope north component
    sin_a[np.isnan(dem)] = np.nan
    cos_a[np.isnan(dem)] = np.nan
    return sin_a, cos_a


def curvature(dem: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """Total (Laplacian) curvature d2z/dx2 + d2z/dy2 in 1/m; positive on hollows, negative on crests."""
    z = np.pad(dem, 1, mode="edge")
    c = z[1:-1, 1:-1]
    neighbours = [z[1:-1, :-2], z[1:-1, 2:], z[:-2, 1:-1], z[2:, 1:-1]]
    west, east, north, south = (np.where(np.isnan(n), c, n) for n in neighbours)
    return (west + east - 2 * c) / dx**2 + (north + south - 2 * c) / dy**2


def fill_depressions(dem: np.ndarray, epsilon: float = 1e-5) -> tuple[np.ndarray, np.ndarray]:
    """Priority-flood depression filling with epsilon (Barnes, Lehman & Mulla 2014).

    Cells on the grid border or next to nodata are outlets. Every filled cell ends strictly higher
    than the cell it drains to, so flow has a direction on flats.

    Returns:
        filled: the filled DEM (NaN where the input is NaN).
        order: flat indices of valid cells in the order they were reached, outlets first (a
            topological order: every cell's downstream neighbours come before it).
    """
    rows, cols = dem.shape
    pcols = cols + 2
    z = np.pad(dem.astype(np.float64), 1, constant_values=np.nan)
    valid = ~np.isnan(z)
    # outlets: valid cells with an invalid (or off-grid) neighbour
    edge = np.zeros_like(valid)
    for dr, dc in _OFFSETS:
        edge[1:-1, 1:-1] |= ~valid[1 + dr : 1 + dr + rows, 1 + dc : 1 + dc + cols]
    edge &= valid
    zl = z.ravel().tolist()  # plain Python lists: much faster than numpy scalars in this loop
    done = bytearray((~valid).ravel().tobytes())
    heap = [(zl[i], i) for i in np.flatnonzero(edge).tolist()]
    heapq.heapify(heap)
    for _, i in heap:
        done[i] = 1
    offsets = [int(dr * pcols + dc) for dr, dc in _OFFSETS]
    order = []
    push, pop, append = heapq.heappush, heapq.heappop, order.append
    while heap:
        zi, i = pop(heap)
        append(i)
        for off in offsets:
            j = i + off
            if not done[j]:
                done[j] = 1
                if zl[j] <= zi:
                    zl[j] = zi + epsilon
                push(heap, (zl[j], j))
    filled = np.asarray(zl).reshape(rows + 2, pcols)[1:-1, 1:-1].copy()
    order_idx = np.asarray(order, dtype=np.int64)
    order_r, order_c = np.divmod(order_idx, pcols)
    return filled, (order_r - 1) * cols + (order_c - 1)


def flow_accumulation(dem: np.ndarray, dx: float, dy: float, method: FlowMethod = "mfd", exponent: float = 1.1) -> np.ndarray:
    """Upslope contributing area in cells (each cell counts itself), NaN on nodata.

    Solves ``acc = 1 + W^T acc`` (W[i, j] = share of cell i's flow passed to j) as one sparse triangular
    system: the epsilon-filled DEM makes the flow graph acyclic.

    Args:
        dem: elevations (m), NaN for nodata.
        dx, dy: ground pixel size (m).
        method: ``"mfd"`` (Freeman multiple flow direction, slope**exponent weights) or ``"d8"``.
    """
    from scipy import sparse
    from scipy.sparse.linalg import spsolve

    filled, order = fill_depressions(dem)
    rows, cols = dem.shape
    flat = filled.ravel()
    dist = np.hypot(_OFFSETS[:, 0] * dy, _OFFSETS[:, 1] * dx)
    cells = np.arange(rows * cols)
    r_idx, c_idx = np.divmod(cells, cols)
    nr = r_idx[:, None] + _OFFSETS[None, :, 0]
    nc = c_idx[:, None] + _OFFSETS[None, :, 1]
    inside = (nr >= 0) & (nr < rows) & (nc >= 0) & (nc < cols)
    nbr = np.where(inside, nr * cols + nc, 0)
    with np.errstate(invalid="ignore"):
        drop = np.where(inside, flat[:, None] - flat[nbr], np.nan) / dist[None, :]
    drop = np.where(np.isnan(drop) | (drop <= 0), 0.0, drop)
    if method == "d8":
        best = np.argmax(drop, axis=1)
        weights = np.zeros_like(drop)
        has = drop[cells, best] > 0
        weights[cells[has], best[has]] = 1.0
    else:
        weights = drop**exponent
        total = weights.sum(axis=1, keepdims=True)
        weights = np.divide(weights, total, out=np.zeros_like(weights), where=total > 0)
    # renumber cells in topological order (outlets first): receivers then have smaller numbers, so
    # (I - W^T) is upper triangular in this numbering
    rank = np.full(rows * cols, -1, dtype=np.int64)
    rank[order] = np.arange(len(order))
    src, k = np.nonzero(weights)
    dst = nbr[src, k]
    keep = (rank[src] >= 0) & (rank[dst] >= 0)
    n = len(order)
    system = sparse.identity(n, format="csc") - sparse.csc_matrix(
        (weights[src[keep], k[keep]], (rank[dst[keep]], rank[src[keep]])), shape=(n, n)
    )
    acc_ranked = spsolve(system.tocsc(), np.ones(n), permc_spec="NATURAL")  # triangular: no fill-in
    acc = np.full(rows * cols, np.nan)
    acc[order] = acc_ranked
    return acc.reshape(rows, cols)


def topographic_wetness_index(
    dem: np.ndarray, dx: float, dy: float, method: FlowMethod = "mfd", min_slope: float = 0.001
) -> np.ndarray:
    """TWI = ln(a / tan b): a = upslope area / contour width (m), tan b floored at ``min_slope``."""
    acc = flow_accumulation(dem, dx, dy, method)
    specific_area = acc * dx * dy / np.sqrt(dx * dy)
    tan_b = np.maximum(slope_tan(dem, dx, dy), min_slope)
    return np.log(specific_area / tan_b)


def terrain_layers(dem: np.ndarray, grid: Grid, names: list[str], flow: FlowMethod = "mfd") -> dict[str, np.ndarray]:
    """The requested terrain covariates (``slope``, ``aspect`` -> ``aspect_sin``/``aspect_cos``,
    ``curvature``, ``twi``) for ``dem`` (m, NaN = nodata) on ``grid``."""
    dx, dy = ground_pixel_size(grid)
    out: dict[str, np.ndarray] = {}
    for name in names:
        if name == "slope":
            out["slope"] = slope_degrees(dem, dx, dy)
        elif name == "aspect":
            out["aspect_sin"], out["aspect_cos"] = aspect_sin_cos(dem, dx, dy)
        elif name == "curvature":
            out["curvature"] = curvature(dem, dx, dy)
        elif name == "twi":
            out["twi"] = topographic_wetness_index(dem, dx, dy, flow)
        else:
            raise ValueError(f"unknown terrain layer {name}")
    return out

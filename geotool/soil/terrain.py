"""Terrain covariates from a DEM: slope, aspect (sin, cos), curvature, flow accumulation and TWI.

All functions take the DEM as a 2-D float array with a boolean ``valid`` mask and the ground pixel
size in metres (see :func:`geotool.soil.geometry.pixel_size_m`: for EPSG:3857 that is the nominal pixel
times cos(latitude)). Rows run south (row 0 is the north edge), columns east. Cells that are not valid
stay invalid in every output (NaN); a valid cell next to nodata or the raster edge uses its own value
for the missing neighbours, so the field edge keeps finite slopes.

No well-kept light-weight library covers this (pysheds needs numba, richdem a C++ build, WhiteboxTools a
binary), so it is implemented here with NumPy and tested on planes, cones and pits.
"""

from __future__ import annotations

import heapq
from typing import Sequence

import numpy as np

TERRAIN_LAYERS = ("slope", "aspect", "curvature", "twi")
# D8 neighbour offsets (drow, dcol)
_OFFSETS = ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1))


def _neighbourhood(dem: np.ndarray, valid: np.ndarray) -> dict[tuple[int, int], np.ndarray]:
    """The 3x3 neighbours of every cell, with missing ones (raster edge, nodata) filled as on a plane.

    A missing side neighbour is extrapolated through the centre from the opposite side (``2 z -
    z_opposite``, or the centre value when that is missing too); a missing diagonal neighbour is
    ``z_side_row + z_side_col - z``. Planes therefore stay exact up to the field edge.
    """
    z = np.where(valid, dem, np.nan).astype(np.float64)
    pad = np.pad(z, 1, constant_values=np.nan)
    rows, cols = z.shape
    raw = {
        (dr, dc): pad[1 + dr : 1 + dr + rows, 1 + dc : 1 + dc + cols] for dr in (-1, 0, 1) for dc in (-1, 0, 1)
    }
    out = {(0, 0): z}
    for side in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        nb = raw[side]
        filled = np.where(np.isnan(nb), 2 * z - raw[(-side[0], -side[1])], nb)
        out[side] = np.where(np.isnan(filled), z, filled)
    for dr in (-1, 1):
        for dc in (-1, 1):
            nb = raw[(dr, dc)]
            out[(dr, dc)] = np.where(np.isnan(nb), out[(dr, 0)] + out[(0, dc)] - z, nb)
    return out


def gradient(dem: np.ndarray, valid: np.ndarray, dx: float, dy: float) -> tuple[np.ndarray, np.ndarray]:
    """Horn (1981) gradient: dz/d(east) and dz/d(north), dimensionless (m/m); NaN outside ``valid``."""
    n = _neighbourhood(dem, valid)
    a, b, c = n[(-1, -1)], n[(-1, 0)], n[(-1, 1)]
    d, f = n[(0, -1)], n[(0, 1)]
    g, h, i = n[(1, -1)], n[(1, 0)], n[(1, 1)]
    dzdx = ((c + 2 * f + i) - (a + 2 * d + g)) / (8.0 * dx)
    dzds = ((g + 2 * h + i) - (a + 2 * b + c)) / (8.0 * dy)  # towards the south (increasing row)
    return dzdx, -dzds


def slope_degrees(dem: np.ndarray, valid: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """Slope in degrees (0 = flat)."""
    gx, gy = gradient(dem, valid, dx, dy)
    return np.degrees(np.arctan(np.hypot(gx, gy)))


def aspect_degrees(dem: np.ndarray, valid: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """Aspect: the compass direction the slope faces (downhill), degrees clockwise from north, 0..360.

    Flat cells (zero gradient) get NaN aspect; :func:`terrain_layers` gives them sin = cos = 0.
    """
    gx, gy = gradient(dem, valid, dx, dy)
    asp = np.degrees(np.arctan2(-gx, -gy)) % 360.0
    asp[(gx == 0) & (gy == 0)] = np.nan
    return asp


def curvature(dem: np.ndarray, valid: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """Total (Laplacian) curvature in 1/m, positive on convex ground (hill tops), negative in hollows.

    ``-(d2z/dx2 + d2z/dy2)`` by central differences (Zevenbergen and Thorne 1987).
    """
    n = _neighbourhood(dem, valid)
    e = n[(0, 0)]
    zxx = (n[(0, -1)] + n[(0, 1)] - 2 * e) / dx**2
    zyy = (n[(-1, 0)] + n[(1, 0)] - 2 * e) / dy**2
    return -(zxx + zyy)


def fill_depressions(dem: np.ndarray, valid: np.ndarray, epsilon: float = 1e-4) -> np.ndarray:
    """Priority-flood depression filling with a small gradient (Barnes et al. 2014, "+epsilon" variant).

    Cells on the raster edge or next to nodata are outlets. Every filled cell ends at least ``epsilon``
    metres above the neighbour it was reached from, so every valid cell has a strictly descending D8 path
    to an outlet. Invalid cells are NaN.

    Args:
        dem: elevations (metres). valid: cells holding data. epsilon: the imposed drop per cell (metres).
    """
    rows, cols = dem.shape
    z = np.where(valid, dem, np.nan).astype(np.float64)
    filled = z.copy()
    done = ~valid.copy()
    pad = np.pad(valid, 1, constant_values=False)
    interior = np.ones_like(valid)
    for dr, dc in _OFFSETS:
        interior &= pad[1 + dr : 1 + dr + rows, 1 + dc : 1 + dc + cols]
    edge = valid & ~interior
    heap = [(float(z[r, c]), int(r) * cols + int(c)) for r, c in zip(*np.nonzero(edge))]
    heapq.heapify(heap)
    done[edge] = True
    flat = filled.ravel()
    done_flat = done.ravel()
    push, pop = heapq.heappush, heapq.heappop
    while heap:
        level, idx = pop(heap)
        r, c = divmod(idx, cols)
        for dr, dc in _OFFSETS:
            rr, cc = r + dr, c + dc
            if 0 <= rr < rows and 0 <= cc < cols:
                j = rr * cols + cc
                if not done_flat[j]:
                    done_flat[j] = True
                    if flat[j] <= level:
                        flat[j] = level + epsilon
                    push(heap, (flat[j], j))
    return flat.reshape(rows, cols)


def d8_receivers(filled: np.ndarray, valid: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """Flat index of each cell's steepest-descent D8 neighbour; -1 for outlets and invalid cells."""
    rows, cols = filled.shape
    z = np.where(valid, filled, np.nan)
    pad = np.pad(z, 1, constant_values=np.nan)
    best = np.zeros(z.shape)
    rec = np.full(z.shape, -1, dtype=np.int64)
    rr, cc = np.indices(z.shape)
    for dr, dc in _OFFSETS:
        nb = pad[1 + dr : 1 + dr + rows, 1 + dc : 1 + dc + cols]
        dist = np.hypot(dr * dy, dc * dx)
        drop = (z - nb) / dist
        better = np.nan_to_num(drop, nan=-np.inf) > best
        best = np.where(better, drop, best)
        rec = np.where(better, (rr + dr) * cols + (cc + dc), rec)
    rec[~valid] = -1
    return rec.ravel()


def flow_accumulation(dem: np.ndarray, valid: np.ndarray, dx: float, dy: float, epsilon: float = 1e-4) -> np.ndarray:
    """D8 flow accumulation on the depression-filled DEM: number of cells draining through each cell.

    Each valid cell counts itself (so a ridge cell has 1). Invalid cells are NaN.
    """
    filled = fill_depressions(dem, valid, epsilon)
    rec = d8_receivers(filled, valid, dx, dy)
    order = np.argsort(np.where(valid, filled, -np.inf).ravel(), kind="stable")[::-1]
    order = order[: int(valid.sum())]  # valid cells, highest first: donors before receivers
    acc = valid.ravel().astype(np.float64)
    rec_list = rec.tolist()
    acc_list = acc.tolist()
    for i in order.tolist():
        j = rec_list[i]
        if j >= 0:
            acc_list[j] += acc_list[i]
    out = np.asarray(acc_list).reshape(dem.shape)
    out[~valid] = np.nan
    return out


def twi(
    dem: np.ndarray, valid: np.ndarray, dx: float, dy: float, min_tan_slope: float = 1e-3, epsilon: float = 1e-4
) -> np.ndarray:
    """Topographic wetness index ln(a / tan b).

    ``a`` is the specific catchment area (m^2 per metre of contour): D8 accumulated cells times the cell
    area, divided by the cell width sqrt(dx * dy). ``tan b`` is the local slope (Horn), floored at
    ``min_tan_slope`` so flat cells stay finite.
    """
    acc = flow_accumulation(dem, valid, dx, dy, epsilon)
    a = acc * dx * dy / np.sqrt(dx * dy)
    gx, gy = gradient(dem, valid, dx, dy)
    tanb = np.maximum(np.hypot(gx, gy), min_tan_slope)
    out = np.log(a / tanb)
    out[~valid] = np.nan
    return out


def terrain_layers(
    dem: np.ndarray, valid: np.ndarray, dx: float, dy: float, layers: Sequence[str] = TERRAIN_LAYERS
) -> dict[str, np.ndarray]:
    """The requested terrain covariates as named float arrays (NaN outside ``valid``).

    ``aspect`` expands to ``aspect_sin`` and ``aspect_cos`` (both 0 on flat cells), so the circular
    variable has no jump at north.
    """
    out: dict[str, np.ndarray] = {}
    for name in layers:
        if name == "slope":
            out["slope"] = slope_degrees(dem, valid, dx, dy)
        elif name == "aspect":
            asp = np.radians(aspect_degrees(dem, valid, dx, dy))
            flat = valid & np.isnan(asp)
            s, c = np.sin(asp), np.cos(asp)
            s[flat] = 0.0
            c[flat] = 0.0
            out["aspect_sin"], out["aspect_cos"] = s, c
        elif name == "curvature":
            out["curvature"] = curvature(dem, valid, dx, dy)
        elif name == "twi":
            out["twi"] = twi(dem, valid, dx, dy)
        else:
            raise ValueError(f"unknown terrain layer {name!r}")
    for arr in out.values():
        arr[~valid] = np.nan
    return out

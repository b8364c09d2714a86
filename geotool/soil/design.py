"""The ``soil-sample`` pipeline: covariates -> candidate features -> selection -> points (+ sidecar, plot).

Callable from Python with the same config as the CLI::

    from geotool.soil.config import SoilSampleConfig
    from geotool.soil.design import run_soil_sample
    result = run_soil_sample(SoilSampleConfig(dem="dem.tif", n_points=20, output="points.gpkg"))
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from geotool.errors import ConfigError, EmptyDataError, InputFileError, OutputError
from geotool.soil.config import SoilSampleConfig

log = logging.getLogger("geotool.soil")


@dataclass
class Candidates:
    """Candidate cells and their design features."""

    rows: np.ndarray
    cols: np.ndarray
    values: np.ndarray  # cells x k raw covariate values
    xy_ground: np.ndarray  # cells x 2, local ground metres
    names: list[str]
    dropped: dict[str, str]


@dataclass
class SampleResult:
    """What ``soil-sample`` produced."""

    output: Path
    n_new: int
    n_existing: int
    n_candidates: int
    features: list[str]
    warnings: list[str] = field(default_factory=list)
    results: dict = field(default_factory=dict)


def check_outputs(cfg: SoilSampleConfig) -> None:
    """Fail early on output paths the writers cannot produce."""
    from geotool.io.vector import VECTOR_SUFFIXES

    if cfg.output.suffix.lower() not in VECTOR_SUFFIXES:
        raise OutputError(f"{cfg.output}: unsupported extension; use .gpkg, .geojson, .shp or .csv")
    if cfg.plot is not None and cfg.plot.suffix.lower() != ".png":
        raise OutputError(f"{cfg.plot}: --plot writes PNG; give a .png path")


def boundary_mask(path: Path, grid, raster_name: str) -> np.ndarray:
    """Cells whose centre lies inside the boundary polygon(s) (reprojected to the raster CRS)."""
    from geotool.io.vector import rasterize, read_vector, require_features

    gdf = read_vector(path, target=grid, raster_name=raster_name)
    require_features(gdf, path, "boundary polygons")
    polys = gdf[gdf.geometry.geom_type.isin(["Polygon", "MultiPolygon"])]
    if len(polys) == 0:
        raise InputFileError(f"{path} holds no polygons; --boundary needs the field outline as a polygon")
    inside = rasterize(polys, grid).astype(bool)
    if not inside.any():
        raise EmptyDataError(f"{path} covers no cell centre of {raster_name}; check the boundary")
    return inside


def read_existing(path: Path, grid, valid: np.ndarray, raster_name: str):
    """Existing points in the raster CRS, with their row/col; each must fall on a valid cell."""
    from geotool.io.vector import read_vector, require_features

    gdf = read_vector(path, target=grid, raster_name=raster_name, csv_crs=grid.crs)
    require_features(gdf, path, "points")
    if not (gdf.geometry.geom_type == "Point").all():
        raise InputFileError(f"{path}: --existing needs point geometries, found {sorted(set(gdf.geometry.geom_type))}")
    x, y = gdf.geometry.x.to_numpy(), gdf.geometry.y.to_numpy()
    rows, cols = grid.rowcol(x, y)
    inside = (rows >= 0) & (rows < grid.height) & (cols >= 0) & (cols < grid.width)
    ok = inside.copy()
    ok[inside] = valid[rows[inside], cols[inside]]
    if not ok.all():
        bad = int(np.flatnonzero(~ok)[0])
        raise InputFileError(
            f"{path}: point {bad + 1} ({x[bad]:.2f}, {y[bad]:.2f}) lies outside {raster_name} or on a nodata cell, "
            "so it has no covariate values; remove it or extend the rasters"
        )
    return x, y, rows, cols


def select(cfg: SoilSampleConfig, A: np.ndarray, Z: np.ndarray, xy: np.ndarray, fixed_A, fixed_Z, fixed_xy):
    """Run the configured method; returns candidate indices in pick order."""
    from geotool.soil import baselines
    from geotool.soil.maxvol import maxvol_select

    n = cfg.n_points
    if cfg.method == "maxvol":
        return maxvol_select(A, n, xy, cfg.min_distance, fixed_A, fixed_xy, tol=cfg.tol).indices
    if cfg.method == "random":
        return baselines.random_design(len(Z), n, xy, cfg.min_distance, fixed_xy, cfg.seed)
    if cfg.method == "clhs":
        return baselines.clhs_design(Z, n, xy, cfg.min_distance, fixed_Z, fixed_xy, cfg.seed, cfg.clhs_iterations)
    return baselines.kmeans_design(Z, n, xy, cfg.min_distance, fixed_xy, cfg.seed)


def nearest_other_distance(xy: np.ndarray) -> np.ndarray:
    """Ground distance (metres) from each point to its nearest other point (NaN for a single point)."""
    if len(xy) < 2:
        return np.full(len(xy), np.nan)
    from scipy.spatial import cKDTree

    d, _ = cKDTree(xy).query(xy, k=2)
    return d[:, 1]


def run_soil_sample(cfg: SoilSampleConfig) -> SampleResult:
    """Choose ``cfg.n_points`` sampling locations and write them (all inputs are checked first)."""
    import geopandas as gpd

    from geotool.config import write_sidecar
    from geotool.io.vector import write_vector
    from geotool.soil.covariates import load_covariates
    from geotool.soil.features import FeatureSpace, check_columns
    from geotool.soil.geometry import ground_xy, lonlat

    t0 = time.perf_counter()
    check_outputs(cfg)
    cov = load_covariates(cfg)
    grid = cov.grid
    ref_name = str(cov.paths[0])
    candidates = cov.valid.copy()
    if cfg.boundary is not None:
        candidates &= boundary_mask(cfg.boundary, grid, ref_name)
        if not candidates.any():
            raise EmptyDataError(f"{cfg.boundary} contains no cell that is valid in every covariate layer")
    ex = read_existing(cfg.existing, grid, cov.valid, ref_name) if cfg.existing is not None else None

    rows, cols = np.nonzero(candidates)
    values = cov.data[:, rows, cols].T
    report = check_columns(values, cov.names)
    keep = [cov.names.index(n) for n in report.kept]
    values = values[:, keep]
    x, y = grid.xy(rows, cols)
    xy = np.column_stack(ground_xy(grid, x, y))
    space = FeatureSpace.fit(
        values, report.kept, cfg.expansion, xy if cfg.coords else None, cfg.kernel_landmarks, cfg.kernel_scale, cfg.seed
    )
    # the (possibly large) feature matrix is only needed by maxvol; baselines work on Z
    A = space.transform(values, xy if cfg.coords else None) if cfg.method == "maxvol" else None
    Z = ((values - space.mean) / space.std).astype(np.float32)
    fixed_A = fixed_Z = fixed_xy = None
    n_ex = 0
    if ex is not None:
        ex_x, ex_y, ex_r, ex_c = ex
        n_ex = len(ex_x)
        ex_vals = cov.data[:, ex_r, ex_c].T[:, keep]
        fixed_xy = np.column_stack(ground_xy(grid, ex_x, ex_y))
        fixed_A = space.transform(ex_vals, fixed_xy if cfg.coords else None)
        fixed_Z = ((ex_vals - space.mean) / space.std).astype(np.float32)
    n_feat = len(space.columns())
    if cfg.n_points > len(values):
        raise ConfigError(f"-n {cfg.n_points} is more than the {len(values)} candidate cells")
    t_sel = time.perf_counter()
    picked = select(cfg, A, Z, xy, fixed_A, fixed_Z, fixed_xy)
    design_rows = A[picked] if A is not None else space.transform(values[picked], xy[picked] if cfg.coords else None)
    t_sel = time.perf_counter() - t_sel

    # -- assemble the output table: existing points first, then new ones in pick order ---------------
    pr, pc = rows[picked], cols[picked]
    px, py = grid.xy(pr, pc)
    all_x = np.concatenate([ex[0] if ex else [], px])
    all_y = np.concatenate([ex[1] if ex else [], py])
    all_r = np.concatenate([ex[2] if ex else [], pr]).astype(np.int64)
    all_c = np.concatenate([ex[3] if ex else [], pc]).astype(np.int64)
    legacy = np.concatenate([np.ones(n_ex, bool), np.zeros(len(picked), bool)])
    order = np.concatenate([np.zeros(n_ex, np.int64), np.arange(1, len(picked) + 1)])
    gx, gy = ground_xy(grid, all_x, all_y)
    lon, lat = lonlat(grid.crs, all_x, all_y)
    table = {
        "x": all_x, "y": all_y, "lon": lon, "lat": lat, "row": all_r, "col": all_c,
        "order": order, "legacy": legacy,
    }
    for i, name in enumerate(cov.names):
        table[name] = cov.data[i, all_r, all_c]
    table["nearest_m"] = nearest_other_distance(np.column_stack([gx, gy]))
    gdf = gpd.GeoDataFrame(table, geometry=gpd.points_from_xy(all_x, all_y), crs=grid.crs)

    warnings = report.warnings()
    for w in warnings:
        log.warning(w)
    results = {
        "candidates": int(len(values)),
        "features": space.columns(),
        "dropped_covariates": report.dropped,
        "new_points": int(len(picked)),
        "existing_points": n_ex,
        "log_det_design": _log_det(np.vstack([fixed_A, design_rows]) if fixed_A is not None else design_rows),
        "min_nearest_m": float(np.nanmin(table["nearest_m"])) if len(gdf) > 1 else None,
        "pixel_ground_m": list(cov.pixel_m),
        "selection_seconds": round(t_sel, 4),
        "total_seconds": round(time.perf_counter() - t0, 4),
    }
    fig = None
    if cfg.plot is not None:  # drawn before anything is written, saved after
        from geotool.soil.plot import design_figure

        fig = design_figure(cov, gdf, candidates, f"{cfg.method}: {len(picked)} new points, {n_feat} features")
    write_vector(gdf, cfg.output)
    inputs = [p for p in [cfg.dem, *cov.paths, cfg.boundary, cfg.existing] if p is not None]
    write_sidecar(cfg.output, "soil-sample", cfg, inputs=list(dict.fromkeys(map(str, inputs))), seed=cfg.seed, results=results)
    if fig is not None:
        from geotool.io.figures import save_figure

        save_figure(fig, cfg.plot)
    return SampleResult(cfg.output, len(picked), n_ex, int(len(values)), space.columns(), warnings, results)


def _log_det(S: np.ndarray) -> float:
    from geotool.soil.maxvol import log_volume

    return log_volume(S)

"""The ``soil-sample`` pipeline: covariate rasters in, N sampling points out.

Steps: read and align the covariate layers (and the DEM), derive terrain layers, find candidate cells
(valid in every layer, inside the boundary), build the standardised design matrix, keep legacy points,
choose the new points (maxvol or a baseline), and write the points, the JSON sidecar and the map.
Coordinates: x, y are cell centres in the raster CRS; lon, lat in WGS84; distances in ground metres.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional

import numpy as np
from pydantic import Field, field_validator

from geotool.config import GeotoolConfig
from geotool.errors import ConfigError, InfeasibleError, NoOverlapError
from geotool.soil.features import Candidates, FeatureMode, FeatureReport, candidate_cells, design_matrix

log = logging.getLogger("geotool.soil")

Method = Literal["maxvol", "random", "clhs", "kmeans"]
TerrainName = Literal["slope", "aspect", "curvature", "twi"]
POINT_SUFFIXES = (".gpkg", ".geojson", ".json", ".shp", ".csv")


class SoilSampleConfig(GeotoolConfig):
    """Settings of ``geotool soil-sample``."""

    covariates: list[Path] = Field(default_factory=list, description="Covariate GeoTIFFs (single- or multi-band) on one grid.")
    n: int = Field(..., ge=1, description="Number of points in the design, existing points included.")
    output: Path = Field(..., description="Points file: .gpkg, .geojson, .shp or .csv.")
    dem: Optional[Path] = Field(None, description="DEM (metres) on the covariates' grid; elevation becomes a covariate.")
    terrain: list[TerrainName] = Field(default_factory=list, description="Terrain covariates derived from the DEM.")
    flow: Literal["mfd", "d8"] = Field("mfd", description="Flow routing for the TWI.")
    boundary: Optional[Path] = Field(None, description="Field polygon(s); only cells whose centre is inside are candidates.")
    existing: Optional[Path] = Field(None, description="Legacy points kept in the design (vector file or CSV).")
    existing_x: str = Field("x", description="X column when --existing is a CSV.")
    existing_y: str = Field("y", description="Y column when --existing is a CSV.")
    existing_crs: Optional[str] = Field(None, description="CRS of a CSV --existing (default: the rasters' CRS).")
    min_distance: float = Field(0.0, ge=0, description="Minimum distance between any two points, ground metres.")
    method: Method = Field("maxvol", description="Selection method.")
    features: FeatureMode = Field(
        "kernel",
        description="maxvol features: kernel (RBF on rank-uniformised covariates, the measured best; see "
        "BENCHMARKS.md), or the paper's linear/quadratic/cubic polynomial features.",
    )
    kernel_landmarks: Optional[int] = Field(None, ge=1, description="Kernel landmarks (default 2 x n).")
    coordinates: bool = Field(False, description="Add the cell coordinates as features (spreads points in space).")
    seed: int = Field(0, description="Random seed (random, clhs, kmeans; maxvol is deterministic).")
    nodata: Optional[float] = Field(None, description="Nodata value overriding the files' own.")
    resample: Optional[Literal["nearest", "bilinear", "cubic"]] = Field(
        None, description="Resample layers that are not on the first layer's grid instead of refusing them."
    )
    clhs_iterations: int = Field(5000, ge=1, description="cLHS annealing iterations.")
    feature_memory_mb: float = Field(
        512.0, gt=0,
        description="Memory for the kernel feature matrix, MiB; above it kernel maxvol runs on a seeded uniform "
        "subset of the candidate cells that fits (bounded memory at 3e7+ cells).",
    )
    plot: Optional[Path] = Field(None, description="PNG map of the points over a hillshade.")

    @field_validator("plot")
    @classmethod
    def _plot_suffix(cls, value: Optional[Path]) -> Optional[Path]:
        if value is not None and value.suffix.lower() != ".png":
            raise ValueError(f"{value}: the plot is a PNG; use a .png file name")
        return value

    @field_validator("output")
    @classmethod
    def _output_suffix(cls, value: Path) -> Path:
        if value.suffix.lower() not in POINT_SUFFIXES:
            raise ValueError(f"{value}: use a .gpkg, .geojson, .shp or .csv file name")
        return value


@dataclass
class SoilSampleResult:
    """What ``soil-sample`` chose and wrote."""

    points: object  # GeoDataFrame
    n_candidates: int
    feature_names: list[str]
    report: FeatureReport
    log_det: float
    written: list[Path] = field(default_factory=list)


def run_soil_sample(cfg: SoilSampleConfig) -> SoilSampleResult:
    """Run the whole command: validate every input first, then select, then write atomically."""
    from geotool.config import write_sidecar
    from geotool.io.vector import write_vector

    layers, valid, names, grid, dem = _read_layers(cfg)
    from geotool.soil.terrain import ground_pixel_size

    pixel_m = ground_pixel_size(grid)
    inside = _boundary_mask(cfg, grid) if cfg.boundary else None
    legacy_rc = _legacy_cells(cfg, grid, valid & np.all(np.isfinite(layers), axis=0)) if cfg.existing else np.empty((0, 2), int)
    pool = inside.copy() if inside is not None else np.ones(grid.shape, bool)
    pool[legacy_rc[:, 0], legacy_rc[:, 1]] = True
    cand = candidate_cells(layers, valid, names, pixel_m, inside=pool)
    allowed = inside[cand.rows, cand.cols] if inside is not None else np.ones(len(cand.rows), bool)
    if not allowed.any():
        raise NoOverlapError(f"{cfg.boundary} contains no valid cell of the covariates; check the boundary and the nodata")
    fixed = _rows_of_cells(cand, legacy_rc)
    n_new_possible = int(allowed.sum()) + len(fixed)
    if cfg.n > n_new_possible:
        raise InfeasibleError(
            f"asked for {cfg.n} points but only {n_new_possible} candidate cells are valid"
            f"{' inside ' + str(cfg.boundary) if cfg.boundary else ''}; ask for fewer"
        )
    coords = cand.coords_m if cfg.coordinates else None
    A, report, feat_names = design_matrix(cand.values, cand.names, "linear", coords=coords)
    for line in report.warnings():
        log.warning(line)
    if cfg.method == "maxvol" and cfg.features == "kernel":
        rows, feat_names = _kernel_maxvol(cfg, A, cand, fixed, allowed)
    else:
        if cfg.method == "maxvol" and cfg.features != "linear":
            selection_matrix, _, feat_names = design_matrix(cand.values, cand.names, cfg.features, coords=coords)
        else:
            selection_matrix = A
        rows = select_rows(cfg, selection_matrix, cand, fixed, allowed)
    from geotool.soil.maxvol import design_log_det

    log_det = design_log_det(A, rows)  # D-criterion of the linear design, comparable across methods
    points = _points_frame(cand, rows, len(fixed), grid, pixel_m)
    write_vector(points, cfg.output)
    written = [cfg.output]
    results = {
        "n_points": int(len(rows)),
        "n_existing": int(len(fixed)),
        "n_candidates": int(allowed.sum()),
        "features": feat_names,
        "dropped_columns": report.warnings(),
        "design_log_det": log_det,
        "ground_pixel_size_m": list(pixel_m),
        "crs": grid.crs.to_string(),
    }
    written.append(write_sidecar(cfg.output, "soil-sample", cfg, inputs=_inputs(cfg), seed=cfg.seed, results=results))
    if cfg.plot:
        from geotool.soil.plots import plot_design

        background = dem if dem is not None else np.where(valid, layers[0], np.nan)
        written.append(plot_design(cfg.plot, background, grid, points, pool, title=f"{cfg.method}: {len(rows)} points",
                                   shaded=dem is not None))
    return SoilSampleResult(points, int(allowed.sum()), feat_names, report, log_det, written)


def select_rows(cfg: SoilSampleConfig, A: np.ndarray, cand: Candidates, fixed: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Row indices (into the candidates) of the design, fixed rows first."""
    from geotool.soil.baselines import clhs_design, kmeans_design, random_design
    from geotool.soil.maxvol import maxvol_select

    rng = np.random.default_rng(cfg.seed)
    coords = cand.coords_m
    if cfg.method == "maxvol":
        return maxvol_select(A, cfg.n, fixed=fixed, coords=coords, min_distance=cfg.min_distance, allowed=allowed).rows
    # baselines work on the standardised linear features of the allowed cells plus the fixed ones
    pool = np.flatnonzero(allowed | np.isin(np.arange(len(allowed)), fixed))
    local_fixed = np.searchsorted(pool, fixed)
    X = A[pool, 1:]
    sub_coords = coords[pool]
    if cfg.method == "random":
        local = random_design(len(pool), cfg.n, rng, local_fixed, sub_coords, cfg.min_distance)
    elif cfg.method == "clhs":
        local = clhs_design(X, cfg.n, rng, local_fixed, sub_coords, cfg.min_distance, iterations=cfg.clhs_iterations)
    else:
        local = kmeans_design(X, cfg.n, rng, local_fixed, sub_coords, cfg.min_distance)
    return pool[local]


def candidate_pool(allowed: np.ndarray, fixed: np.ndarray, limit: int, seed: int) -> np.ndarray:
    """Sorted candidate rows the kernel maxvol runs on: every allowed row when they fit in ``limit``,
    else a seeded uniform subset of ``limit`` allowed rows; fixed rows are always in it.

    Kernel features are a function of the covariates alone, so a uniform subset of a few million cells
    represents the covariate distribution the design is drawn from (measured in BENCHMARKS.md, soil
    memory section); it is what keeps cells x landmarks float32 features bounded at 3e7+ cells.
    """
    allowed_rows = np.flatnonzero(allowed)
    if len(allowed_rows) > limit:
        rng = np.random.default_rng(seed)
        allowed_rows = np.sort(rng.choice(allowed_rows, limit, replace=False))
    return np.union1d(allowed_rows, fixed)


def _kernel_maxvol(cfg: SoilSampleConfig, A: np.ndarray, cand: Candidates, fixed: np.ndarray, allowed: np.ndarray):
    """soil-sample's kernel maxvol; returns candidate rows and feature names."""
    rows, size = kernel_maxvol(A[:, 1:], cfg.n, fixed=fixed, allowed=allowed, coords=cand.coords_m,
                               min_distance=cfg.min_distance, landmarks=cfg.kernel_landmarks or 2 * cfg.n,
                               seed=cfg.seed, feature_memory_mb=cfg.feature_memory_mb)
    return rows, [f"rbf_{i}" for i in range(size)]


def kernel_maxvol(
    X: np.ndarray,
    n: int,
    fixed: np.ndarray | None = None,
    allowed: np.ndarray | None = None,
    coords: np.ndarray | None = None,
    min_distance: float = 0.0,
    landmarks: int | None = None,
    seed: int = 0,
    feature_memory_mb: float = 512.0,
) -> tuple[np.ndarray, int]:
    """maxvol on kernel features of a memory-bounded candidate pool.

    Args:
        X: ``(cells, covariates)`` standardised covariates (no intercept).
        n: points in the design, fixed rows included.
        landmarks: kernel features (default 2 x n).
        feature_memory_mb: cap on the float32 pool x landmarks feature matrix, MiB.

    Returns:
        Chosen rows of ``X`` (fixed first) and the number of kernel features.
    """
    from geotool.soil.features import fit_kernel_map, rank_uniformise
    from geotool.soil.maxvol import maxvol_select

    cells = len(X)
    fixed = np.unique(np.asarray([] if fixed is None else fixed, dtype=np.int64))
    allowed = np.ones(cells, dtype=bool) if allowed is None else np.asarray(allowed, dtype=bool)
    landmarks = landmarks or 2 * n
    limit = max(n, int(feature_memory_mb * 2**20 // (4 * landmarks)))
    pool = candidate_pool(allowed, fixed, limit, seed)
    if int(allowed.sum()) > len(pool):
        log.info("kernel maxvol on a seeded subset of %d of %d candidate cells (--feature-memory-mb %g)",
                 len(pool), int(allowed.sum()), feature_memory_mb)
    # ranks among every candidate cell, so the pool does not shift them
    ranks = rank_uniformise(X, rows=None if len(pool) == cells else pool)
    kmap = fit_kernel_map(ranks, landmarks, seed=seed)
    feats = kmap.transform(ranks)
    del ranks
    sel = maxvol_select(feats, n, fixed=np.searchsorted(pool, fixed), coords=None if coords is None else coords[pool],
                        min_distance=min_distance, allowed=allowed[pool])
    return pool[sel.rows], kmap.size


def _read_layers(cfg: SoilSampleConfig):
    """Covariates (+ DEM and terrain layers) as float32 ``(layers, rows, cols)`` with NaN for nodata."""
    from geotool.io.raster import RasterSource

    paths = list(cfg.covariates) + ([cfg.dem] if cfg.dem else [])
    if not paths:
        raise ConfigError("give at least one covariate raster or --dem")
    if cfg.terrain and not cfg.dem:
        raise ConfigError("--terrain needs --dem: terrain layers are derived from the DEM")
    with RasterSource(paths, nodata=cfg.nodata, resample=cfg.resample) as src:
        data, valid = src.read(dtype=np.float32)  # float32: the layers are read once and held whole
        names = list(src.band_names)
        grid = src.grid
        n_dem_band = src.count - 1 if cfg.dem else None
    if cfg.dem:
        names[n_dem_band] = "elevation"
    data[:, ~valid] = np.nan
    names = _unique(names)
    dem = data[n_dem_band] if cfg.dem else None
    if cfg.terrain:
        from geotool.soil.terrain import terrain_layers

        extra = terrain_layers(dem.astype(np.float64), grid, list(dict.fromkeys(cfg.terrain)), flow=cfg.flow)
        data = np.concatenate([data, np.stack(list(extra.values())).astype(np.float32)])
        names = _unique(names + list(extra))
        valid = valid & np.all(np.isfinite(data), axis=0)
    from geotool.io.raster import require_valid_pixels

    require_valid_pixels(valid, " + ".join(str(p) for p in paths))
    return data, valid, names, grid, dem


def _unique(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for name in names:
        if name in seen:
            seen[name] += 1
            out.append(f"{name}_{seen[name]}")
        else:
            seen[name] = 0
            out.append(name)
    return out


def _boundary_mask(cfg: SoilSampleConfig, grid) -> np.ndarray:
    from geotool.io.vector import rasterize, read_vector, require_features

    polygons = read_vector(cfg.boundary, target=grid, raster_name=str(cfg.covariates[0] if cfg.covariates else cfg.dem))
    require_features(polygons, cfg.boundary, "polygons")
    polygons = polygons[polygons.geometry.geom_type.isin(["Polygon", "MultiPolygon"])]
    require_features(polygons, cfg.boundary, "polygons")
    mask = rasterize(polygons, grid).astype(bool)
    if not mask.any():
        raise NoOverlapError(f"{cfg.boundary} covers no cell centre of the rasters; check the boundary")
    return mask


def _legacy_cells(cfg: SoilSampleConfig, grid, valid: np.ndarray) -> np.ndarray:
    """Unique (row, col) of the legacy points; every point must fall on a valid cell."""
    from geotool.errors import EmptyDataError
    from geotool.io.vector import read_vector, require_features

    pts = read_vector(cfg.existing, target=grid, x_column=cfg.existing_x, y_column=cfg.existing_y,
                      csv_crs=cfg.existing_crs or grid.crs, raster_name="the covariate rasters")
    require_features(pts, cfg.existing, "points")
    if not (pts.geometry.geom_type == "Point").all():
        raise ConfigError(f"{cfg.existing} must hold points (found {', '.join(sorted(set(pts.geometry.geom_type)))})")
    rows, cols = grid.rowcol(pts.geometry.x.to_numpy(), pts.geometry.y.to_numpy())
    outside = (rows < 0) | (rows >= grid.height) | (cols < 0) | (cols >= grid.width)
    if outside.any():
        raise NoOverlapError(f"{int(outside.sum())} point(s) of {cfg.existing} fall outside the rasters; remove them")
    bad = ~valid[rows, cols]
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise EmptyDataError(
            f"{int(bad.sum())} point(s) of {cfg.existing} fall on cells with nodata in some covariate "
            f"(first: feature {first} at row {rows[first]}, col {cols[first]}); fix the layers or drop the points"
        )
    cells = np.unique(np.column_stack([rows, cols]), axis=0)
    if len(cells) < len(rows):
        log.warning("%d existing points share a cell with another one and count once", len(rows) - len(cells))
    return cells


def _rows_of_cells(cand: Candidates, cells: np.ndarray) -> np.ndarray:
    if len(cells) == 0:
        return np.empty(0, dtype=np.int64)
    # candidates come from np.nonzero, so their linear cell indices are sorted: binary search, no dict
    width = int(cand.cols.max()) + 1 if len(cand.cols) else 1
    width = max(width, int(cells[:, 1].max()) + 1)
    key = cand.rows.astype(np.int64) * width + cand.cols
    want = cells[:, 0].astype(np.int64) * width + cells[:, 1]
    idx = np.searchsorted(key, want)
    if (idx >= len(key)).any() or not np.array_equal(key[np.minimum(idx, len(key) - 1)], want):
        raise AssertionError("a legacy cell is not among the candidates")  # candidate_cells includes them
    return idx.astype(np.int64)


def _points_frame(cand: Candidates, rows: np.ndarray, n_fixed: int, grid, pixel_m):
    """GeoDataFrame of the design: pick order, legacy flag, row/col, x/y (cell centres), lon/lat,
    covariate values and the distance (ground metres) to the nearest other point."""
    import geopandas as gpd
    from pyproj import Transformer
    from scipy.spatial import cKDTree

    r, c = cand.rows[rows], cand.cols[rows]
    x, y = grid.xy(r, c)
    lon, lat = Transformer.from_crs(grid.crs, "EPSG:4326", always_xy=True).transform(x, y)
    if len(rows) > 1:
        dist, _ = cKDTree(cand.coords_m[rows]).query(cand.coords_m[rows], k=2)
        nearest = dist[:, 1]
    else:
        nearest = np.full(len(rows), np.nan)
    frame = {
        "order": np.arange(1, len(rows) + 1),
        "legacy": np.arange(len(rows)) < n_fixed,
        "row": r.astype(np.int64),
        "col": c.astype(np.int64),
        "x": x,
        "y": y,
        "lon": np.asarray(lon),
        "lat": np.asarray(lat),
    }
    for j, name in enumerate(cand.names):
        frame[name] = cand.values[rows, j]
    frame["nearest_m"] = nearest
    return gpd.GeoDataFrame(frame, geometry=gpd.points_from_xy(x, y), crs=grid.crs)


def _inputs(cfg: SoilSampleConfig) -> list[Path]:
    return [p for p in [*cfg.covariates, cfg.dem, cfg.boundary, cfg.existing] if p is not None]

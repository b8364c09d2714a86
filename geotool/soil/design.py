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
from pydantic import Field, field_validator, model_validator

from geotool.config import GeotoolConfig
from geotool.errors import ConfigError, InfeasibleError, NoOverlapError
from geotool.soil.features import Candidates, FeatureMode, FeatureReport, candidate_cells, design_matrix

log = logging.getLogger("geotool.soil")

Method = Literal["maxvol", "random", "clhs", "kmeans"]
KernelSpace = Literal["hybrid", "normal", "rank", "standard", "robust"]
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
        description="maxvol features: kernel (RBF on the covariates' hybrid scores, the measured best; see "
        "BENCHMARKS.md), or the paper's linear/quadratic/cubic polynomial features.",
    )
    kernel_landmarks: Optional[int] = Field(
        None, ge=1, description="Kernel landmarks (default n: square kernel maxvol, chosen on two fields; see BENCHMARKS.md).")
    kernel_bandwidth: float = Field(
        0.3, gt=0, description="RBF sigma as a multiple of the landmark spacing (0.3 with kernel_space hybrid: measured "
        "on two fields; the normal-score default of the first #18 study used 0.42, the default before it 0.5 with rank).")
    kernel_space: KernelSpace = Field(
        "hybrid", description="Covariate space of the kernel: hybrid (normal scores and z-scores clipped at "
        "+-kernel_clip side by side; the measured best), normal (normal scores of the ranks: invariant to increasing "
        "transforms of a covariate), rank (rank-uniformised, the default before issue #18), standard (z-scores) or "
        "robust (median/IQR z-scores clipped to +-kernel_clip).")
    kernel_spacing: Literal["median", "nn"] = Field(
        "median", description="What kernel_bandwidth multiplies: the median pairwise landmark distance, or the median "
        "nearest-neighbour landmark distance (nn: the kernel narrows as N grows).")
    kernel_linear: float = Field(
        0.0, ge=0, description="Weight of linear features (intercept + covariates) joined to the RBF features (0 = none).")
    kernel_clip: Optional[float] = Field(
        None, gt=0, description="Clip of the z-scores in the hybrid (default 4) and robust (default 3) kernel spaces, "
        "in standard deviations.")
    refine: int = Field(0, ge=0, description="Coverage refinement rounds after kernel maxvol (0 = pure maxvol).")
    match_marginals: int = Field(
        0, ge=0, description="Marginal-matching rounds after kernel maxvol (0 = none): points swap within the covariate "
        "region they cover so the design's covariate distributions match the field's (lower W/sd, at a cost in random-"
        "forest map error measured in BENCHMARKS.md).")
    coordinates: bool = Field(False, description="Add the cell coordinates as features (spreads points in space).")
    seed: int = Field(0, description="Random seed (random, clhs, kmeans; maxvol is deterministic).")
    nodata: Optional[float] = Field(None, description="Nodata value overriding the files' own.")
    resample: Optional[Literal["nearest", "bilinear", "cubic"]] = Field(
        None, description="Resample layers that are not on the first layer's grid instead of refusing them."
    )
    clhs_iterations: int = Field(5000, ge=1, description="cLHS annealing iterations.")
    feature_memory_mb: float = Field(
        256.0, gt=0,
        description="Memory for the kernel feature matrix, MiB; above it kernel maxvol runs on a seeded uniform "
        "subset of the candidate cells that fits (bounded memory at 3e7+ cells).",
    )
    plot: Optional[Path] = Field(None, description="PNG map of the points over a hillshade.")
    access: Optional[Path] = Field(None, description="Roads/tracks (vector); only cells within --access-buffer of them are candidates.")
    access_buffer: Optional[float] = Field(None, gt=0, description="Reach from --access features, ground metres.")
    exclude: list[Path] = Field(default_factory=list, description="Polygons (buildings, water, private land) whose cells are never sampled.")
    backups: int = Field(0, ge=0, description="Replacement cells per new point, written to <output>_backups.")
    strata: Optional[Path] = Field(None, description="Strata: an integer raster on the covariates' grid, or polygons.")
    strata_column: Optional[str] = Field(None, description="Stratum id column of strata polygons (default: each polygon).")
    allocation: str = Field("proportional", description="Points per stratum: proportional (to area), equal, or a "
                            "column of the strata polygons holding each stratum's count.")
    cost: Optional[Path] = Field(None, description="Cost raster (travel or effort per cell, >= 0) on the covariates' grid.")
    budget: Optional[float] = Field(None, ge=0, description="Total cost of the new points never exceeds this.")
    cost_weight: float = Field(0.0, ge=0, description="Trade-off: maxvol gain vs cost (0 = ignore cost unless --budget).")

    @model_validator(mode="after")
    def _constraints(self) -> "SoilSampleConfig":
        if (self.access is None) != (self.access_buffer is None):
            raise ValueError("--access and --access-buffer go together: give the roads file and the reach in metres")
        if self.cost is not None and self.budget is None and self.cost_weight == 0:
            raise ValueError("--cost needs --budget (total cost) or --cost-weight (trade-off)")
        if self.cost is None and (self.budget is not None or self.cost_weight > 0):
            raise ValueError("--budget and --cost-weight need --cost (a cost raster)")
        if self.cost is not None and self.method != "maxvol":
            raise ValueError("--cost works with --method maxvol only")
        return self

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
    representativeness: dict = field(default_factory=dict)


def run_soil_sample(cfg: SoilSampleConfig) -> SoilSampleResult:
    """Run the whole command: validate every input first, then select, then write atomically."""
    from geotool.config import write_sidecar
    from geotool.io.vector import write_vector

    layers, valid, names, grid, dem = _read_layers(cfg)
    from geotool.soil.terrain import ground_pixel_size

    pixel_m = ground_pixel_size(grid)
    inside = _boundary_mask(cfg, grid) if cfg.boundary else None
    inside = _constraint_mask(cfg, grid, inside)
    strata_map, strata_counts = _read_strata(cfg, grid) if cfg.strata else (None, None)
    cost_map = _read_cost(cfg, grid) if cfg.cost else None
    if strata_map is not None or cost_map is not None:
        # cells without a stratum or a cost cannot be chosen as new points
        extra = np.ones(grid.shape, bool) if inside is None else inside
        if strata_map is not None:
            extra = extra & (strata_map != 0)
        if cost_map is not None:
            extra = extra & np.isfinite(cost_map)
        inside = extra
    legacy_rc = _legacy_cells(cfg, grid, valid & np.all(np.isfinite(layers), axis=0)) if cfg.existing else np.empty((0, 2), int)
    pool = inside.copy() if inside is not None else np.ones(grid.shape, bool)
    pool[legacy_rc[:, 0], legacy_rc[:, 1]] = True
    cand = candidate_cells(layers, valid, names, pixel_m, inside=pool)
    allowed = inside[cand.rows, cand.cols] if inside is not None else np.ones(len(cand.rows), bool)
    if not allowed.any():
        raise NoOverlapError(f"{_where(cfg)} contains no valid cell of the covariates; check it and the nodata")
    fixed = _rows_of_cells(cand, legacy_rc)
    n_new_possible = int(allowed.sum()) + len(fixed)
    if cfg.n > n_new_possible:
        raise InfeasibleError(
            f"asked for {cfg.n} points but only {n_new_possible} candidate cells are valid"
            f"{' in ' + _where(cfg) if inside is not None else ''}; ask for fewer"
        )
    coords = cand.coords_m if cfg.coordinates else None
    A, report, feat_names = design_matrix(cand.values, cand.names, "linear", coords=coords)
    for line in report.warnings():
        log.warning(line)
    labels = strata_map[cand.rows, cand.cols] if strata_map is not None else None
    cost = cost_map[cand.rows, cand.cols].astype(np.float64) if cost_map is not None else None
    if cost is not None:
        cost[fixed] = 0.0  # legacy points are already sampled: they cost nothing
    if cfg.method == "maxvol" and cfg.features != "kernel" and cfg.features != "linear":
        selection_matrix, _, feat_names = design_matrix(cand.values, cand.names, cfg.features, coords=coords)
    else:
        selection_matrix = A
    kernel_names: list[str] = []

    def choose(n_total: int, fixed_rows: np.ndarray, ok: np.ndarray, budget: float | None) -> np.ndarray:
        if cfg.method == "maxvol" and cfg.features == "kernel":
            chosen, names = _kernel_maxvol(cfg, A, cand, fixed_rows, ok, n_total, cost, budget)
            kernel_names[:] = names  # the number of landmarks actually used (fewer on tiny fields)
            return chosen
        return select_rows(cfg, selection_matrix, cand, fixed_rows, ok, n_total, cost, budget)

    allocation: dict[int, int] = {}
    if labels is None:
        rows = choose(cfg.n, fixed, allowed, cfg.budget)
    else:
        rows, allocation = _stratified(cfg, choose, labels, strata_counts, fixed, allowed, cost)
    if kernel_names:
        feat_names = kernel_names
    backups = None
    if cfg.backups:
        from geotool.soil.constraints import find_backups

        backups = find_backups(A[:, 1:], rows, len(fixed), cfg.backups, allowed, cand.coords_m, cfg.min_distance,
                               strata=labels, cost=cost, budget=cfg.budget, seed=cfg.seed)
    from geotool.soil.maxvol import design_log_det

    log_det = design_log_det(A, rows)  # D-criterion of the linear design, comparable across methods
    from geotool.soil.sizes import design_representativeness

    representativeness = design_representativeness(A[:, 1:], rows, allowed, seed=cfg.seed)
    points = _points_frame(cand, rows, len(fixed), grid, pixel_m)
    if labels is not None:
        points.insert(2, "stratum", labels[rows])
    if cost is not None:
        points.insert(2, "cost", cost[rows])
    backup_frame = None
    if backups is not None:
        backup_frame = _points_frame(cand, backups.rows, 0, grid, pixel_m, with_nearest=False)
        backup_frame = backup_frame.drop(columns=["order", "legacy"])
        backup_frame.insert(0, "replaces", backups.replaces + 1)  # the `order` of the point it replaces
        backup_frame.insert(1, "rank", backups.rank)
        backup_frame.insert(2, "covariate_distance", backups.distance)
        if labels is not None:
            backup_frame.insert(3, "stratum", labels[backups.rows])
        if cost is not None:
            backup_frame.insert(3, "cost", cost[backups.rows])
    write_vector(points, cfg.output)
    written = [cfg.output]
    if backup_frame is not None:
        written.append(write_vector(backup_frame, backups_path(cfg.output)))
    results = {
        "n_points": int(len(rows)),
        "n_existing": int(len(fixed)),
        "n_candidates": int(allowed.sum()),
        "features": feat_names,
        "dropped_columns": report.warnings(),
        "design_log_det": log_det,
        "representativeness": representativeness,
        "ground_pixel_size_m": list(pixel_m),
        "crs": grid.crs.to_string(),
    }
    if allocation:
        results["strata_allocation"] = {str(k): v for k, v in allocation.items()}
    if cost is not None:
        results["total_cost_new_points"] = float(cost[rows[len(fixed):]].sum())
    if backup_frame is not None:
        results["backups_file"] = str(written[-1])
    written.append(write_sidecar(cfg.output, "soil-sample", cfg, inputs=_inputs(cfg), seed=cfg.seed, results=results))
    if cfg.plot:
        from geotool.soil.plots import plot_design

        background = dem if dem is not None else np.where(valid, layers[0], np.nan)
        written.append(plot_design(cfg.plot, background, grid, points, pool, title=f"{cfg.method}: {len(rows)} points",
                                   shaded=dem is not None))
    return SoilSampleResult(points, int(allowed.sum()), feat_names, report, log_det, written, representativeness)


def select_rows(cfg: SoilSampleConfig, A: np.ndarray, cand: Candidates, fixed: np.ndarray, allowed: np.ndarray,
                n: int | None = None, cost: np.ndarray | None = None, budget: float | None = None) -> np.ndarray:
    """Row indices (into the candidates) of the design of ``n`` (default ``cfg.n``) points, fixed rows first."""
    from geotool.soil.baselines import clhs_design, kmeans_design, random_design
    from geotool.soil.maxvol import maxvol_select

    n = cfg.n if n is None else n
    rng = np.random.default_rng(cfg.seed)
    coords = cand.coords_m
    if cfg.method == "maxvol":
        return maxvol_select(A, n, fixed=fixed, coords=coords, min_distance=cfg.min_distance, allowed=allowed,
                             cost=cost, budget=budget, cost_weight=cfg.cost_weight).rows
    # baselines work on the standardised linear features of the allowed cells plus the fixed ones
    pool = np.flatnonzero(allowed | np.isin(np.arange(len(allowed)), fixed))
    local_fixed = np.searchsorted(pool, fixed)
    X = A[pool, 1:]
    sub_coords = coords[pool]
    if cfg.method == "random":
        local = random_design(len(pool), n, rng, local_fixed, sub_coords, cfg.min_distance)
    elif cfg.method == "clhs":
        local = clhs_design(X, n, rng, local_fixed, sub_coords, cfg.min_distance, iterations=cfg.clhs_iterations)
    else:
        local = kmeans_design(X, n, rng, local_fixed, sub_coords, cfg.min_distance)
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


def _kernel_maxvol(cfg: SoilSampleConfig, A: np.ndarray, cand: Candidates, fixed: np.ndarray, allowed: np.ndarray,
                   n: int | None = None, cost: np.ndarray | None = None, budget: float | None = None):
    """soil-sample's kernel maxvol; returns candidate rows and feature names."""
    rows, size = kernel_maxvol(A[:, 1:], cfg.n if n is None else n, fixed=fixed, allowed=allowed, coords=cand.coords_m,
                               min_distance=cfg.min_distance, landmarks=cfg.kernel_landmarks or (None if cfg.kernel_linear > 0 else cfg.n),
                               seed=cfg.seed, feature_memory_mb=cfg.feature_memory_mb, cost=cost, budget=budget,
                               cost_weight=cfg.cost_weight, bandwidth=cfg.kernel_bandwidth, space=cfg.kernel_space,
                               refine=cfg.refine, match=cfg.match_marginals, linear=cfg.kernel_linear, spacing=cfg.kernel_spacing,
                               clip=cfg.kernel_clip)
    return rows, [f"rbf_{i}" for i in range(size)]


def backups_path(output: Path) -> Path:
    """Where the backups of ``output`` go: ``<stem>_backups<suffix>`` beside it."""
    return output.with_name(output.stem + "_backups" + output.suffix)


def _where(cfg: SoilSampleConfig) -> str:
    parts = [str(p) for p in (cfg.boundary,) if p]
    if cfg.access:
        parts.append(f"{cfg.access_buffer:g} m of {cfg.access}")
    parts += [f"outside {p}" for p in cfg.exclude]
    if cfg.strata:
        parts.append(f"a stratum of {cfg.strata}")
    if cfg.cost:
        parts.append(f"a valid cost in {cfg.cost}")
    return " and ".join(parts) or "the rasters"


def _constraint_mask(cfg: SoilSampleConfig, grid, inside: np.ndarray | None) -> np.ndarray | None:
    """Boundary AND within reach of an access feature AND outside every exclusion polygon."""
    from geotool.io.vector import near_mask, polygon_mask

    raster_name = str(cfg.covariates[0] if cfg.covariates else cfg.dem)
    mask = inside
    if cfg.access:
        near = near_mask(cfg.access, grid, cfg.access_buffer, raster_name=raster_name)
        if not near.any():
            raise NoOverlapError(f"no cell centre is within {cfg.access_buffer:g} m of {cfg.access}; widen --access-buffer")
        mask = near if mask is None else mask & near
    for path in cfg.exclude:
        # an exclusion that misses the rasters excludes nothing: not an error
        out = polygon_mask(path, grid, raster_name=raster_name, require_overlap=False)
        mask = ~out if mask is None else mask & ~out
    return mask


def _read_strata(cfg: SoilSampleConfig, grid):
    """Stratum label per cell (0 = none) and, for polygons with a count column, each label's count."""
    from geotool.io.vector import VECTOR_SUFFIXES, polygon_features, rasterize

    if cfg.strata.suffix.lower() in VECTOR_SUFFIXES:
        polys = polygon_features(cfg.strata, grid, raster_name="the covariates")
        if cfg.strata_column:
            if cfg.strata_column not in polys.columns:
                raise ConfigError(f"{cfg.strata} has no column {cfg.strata_column!r}; available: "
                                  f"{', '.join(c for c in polys.columns if c != polys.geometry.name)}")
            ids, labels = np.unique(polys[cfg.strata_column].astype(str).to_numpy(), return_inverse=True)
            labels = labels + 1
        else:
            labels = np.arange(1, len(polys) + 1)
        counts = None
        if cfg.allocation not in ("proportional", "equal"):
            if cfg.allocation not in polys.columns:
                raise ConfigError(f"--allocation {cfg.allocation!r} is neither proportional, equal nor a column of "
                                  f"{cfg.strata}")
            per = {}
            for lab, value in zip(labels, polys[cfg.allocation].to_numpy()):
                if not float(value).is_integer() or value < 0:
                    raise ConfigError(f"{cfg.strata} column {cfg.allocation} must hold whole numbers >= 0 (found {value})")
                per[int(lab)] = int(value)  # polygons of one stratum carry the same count
            counts = per
        return rasterize(polys, grid, values=labels, dtype="int32").astype(np.int64), counts
    from geotool.io.raster import read_aligned_band

    data, valid = read_aligned_band(cfg.strata, grid, "strata", dtype="float64")
    if (data[valid] != np.round(data[valid])).any():
        raise ConfigError(f"{cfg.strata} holds non-integer values; strata rasters are class maps")
    if cfg.allocation not in ("proportional", "equal"):
        raise ConfigError(f"--allocation {cfg.allocation!r} needs strata polygons with that column; "
                          f"{cfg.strata} is a raster: use proportional or equal")
    # labels shifted so 0 means "no stratum" (nodata) whatever classes the map uses
    classes, inverse = np.unique(data[valid].astype(np.int64), return_inverse=True)
    out = np.zeros(grid.shape, dtype=np.int64)
    out[valid] = inverse + 1
    return out, None


def _read_cost(cfg: SoilSampleConfig, grid) -> np.ndarray:
    from geotool.io.raster import read_aligned_band

    data, valid = read_aligned_band(cfg.cost, grid, "cost")
    if (data[valid] < 0).any():
        raise ConfigError(f"{cfg.cost} has negative costs; costs are travel time or effort, >= 0")
    return np.where(valid, data, np.nan)


def _stratified(cfg, choose, labels, counts, fixed, allowed, cost):
    """maxvol (or the baseline) inside each stratum in turn, every earlier choice kept as fixed."""
    from geotool.soil.constraints import allocate

    sizes = {int(k): int(v) for k, v in zip(*np.unique(labels[allowed], return_counts=True)) if k != 0}
    n_new = cfg.n - len(fixed)
    if counts is None:
        alloc = allocate(sizes, n_new, cfg.allocation)
    else:
        alloc = {k: v for k, v in counts.items() if v > 0}
        if sum(alloc.values()) != n_new:
            raise ConfigError(f"{cfg.strata} column {cfg.allocation} asks for {sum(alloc.values())} points but "
                              f"-n {cfg.n} leaves {n_new} new ones; make them agree")
        short = [k for k, v in alloc.items() if v > sizes.get(k, 0)]
        if short:
            raise InfeasibleError(f"stratum {short[0]} of {cfg.strata} asks for {alloc[short[0]]} points but has "
                                  f"{sizes.get(short[0], 0)} allowed cells")
    rows = np.asarray(fixed, dtype=np.int64)
    order = sorted(alloc)
    spent = 0.0
    for i, label in enumerate(order):
        budget = None
        if cfg.budget is not None:
            # keep enough for the cheapest completion of the strata still to come
            reserve = sum(alloc[m] * float(np.min(cost[allowed & (labels == m)])) for m in order[i + 1:])
            budget = cfg.budget - spent - reserve
        before = len(rows)
        rows = choose(before + alloc[label], rows, allowed & (labels == label), budget)
        if cost is not None:
            spent += float(cost[rows[before:]].sum())
    return rows, alloc


def kernel_maxvol(
    X: np.ndarray,
    n: int,
    fixed: np.ndarray | None = None,
    allowed: np.ndarray | None = None,
    coords: np.ndarray | None = None,
    min_distance: float = 0.0,
    landmarks: int | None = None,
    seed: int = 0,
    feature_memory_mb: float = 256.0,
    bandwidth: float = 0.3,
    space: KernelSpace = "hybrid",
    refine: int = 0,
    match: int = 0,
    linear: float = 0.0,
    spacing: Literal["median", "nn"] = "median",
    clip: float | None = None,
    cost: np.ndarray | None = None,
    budget: float | None = None,
    cost_weight: float = 0.0,
) -> tuple[np.ndarray, int]:
    """maxvol on kernel features of a memory-bounded candidate pool (soil-sample's default design).

    Default (issue #18, measured on two fields in BENCHMARKS.md): the covariates' hybrid scores (normal scores
    of their ranks and z-scores clipped at +-4, side by side), N k-means landmarks, RBF width 0.3 x the median
    landmark spacing, square maxvol.

    Args:
        X: ``(cells, covariates)`` standardised covariates (no intercept).
        n: points in the design, fixed rows included.
        landmarks: kernel features (default n: the square case, where maxvol's swaps run; measured better
            than 2 x n on both fields of bench/bench_soil_fields.py).
        feature_memory_mb: cap on the float32 pool x landmarks feature matrix, MiB.
        bandwidth: RBF sigma as a multiple of the landmark spacing (see ``spacing``).
        space: covariate space of the kernel (and of ``refine`` and ``match``'s regions): ``hybrid``
            (:func:`geotool.soil.features.hybrid_scores`, z-scores clipped to +-``clip``, default 4), ``normal``
            (normal scores of the ranks), ``rank`` (each covariate rank-uniformised, robust to tails),
            ``standard`` (z-scores) or ``robust`` (median/IQR z-scores clipped to +-``clip``, default 3).
        refine: coverage refinement rounds after maxvol (0 = none): each new point moves to the pool cell
            nearest (in the kernel's covariate space) to the mean of the cells it is the nearest point to.
        match: marginal-matching rounds after maxvol (and ``refine``), 0 = none: each new point may swap for
            a cell of its own coverage region that brings the design's covariate distributions closer to the
            field's (:func:`geotool.soil.refine.match_marginals`).
        linear: weight of linear features (intercept + the covariates in ``space``) joined to the RBF
            features (0 = RBF only); with them the default landmarks are n - 1 - covariates, so the
            feature count stays n (square maxvol).
        spacing: what ``bandwidth`` multiplies: the median pairwise landmark distance or the median
            nearest-neighbour landmark distance (``nn``: the kernel narrows as N grows).

    Returns:
        Chosen rows of ``X`` (fixed first) and the number of kernel features.
    """
    from geotool.soil.features import fit_kernel_map, hybrid_scores, normal_scores, rank_uniformise, robust_scale
    from geotool.soil.maxvol import maxvol_select
    from geotool.soil.refine import match_marginals, refine_coverage

    cells = len(X)
    fixed = np.unique(np.asarray([] if fixed is None else fixed, dtype=np.int64))
    allowed = np.ones(cells, dtype=bool) if allowed is None else np.asarray(allowed, dtype=bool)
    d = X.shape[1]
    if landmarks is None:
        landmarks = max(1, n - 1 - d) if linear > 0 else n
    n_features = landmarks + (1 + d if linear > 0 else 0)
    limit = max(n, int(feature_memory_mb * 2**20 // (4 * n_features)))
    pool = candidate_pool(allowed, fixed, limit, seed)
    if int(allowed.sum()) > len(pool):
        log.info("kernel maxvol on a seeded subset of %d of %d candidate cells (--feature-memory-mb %g)",
                 len(pool), int(allowed.sum()), feature_memory_mb)
    sub = None if len(pool) == cells else pool
    if space == "rank":
        # ranks among every candidate cell, so the pool does not shift them
        space_x = rank_uniformise(X, rows=sub)
    elif space == "normal":
        space_x = normal_scores(X, rows=sub)
    elif space == "hybrid":
        space_x = hybrid_scores(X, rows=sub, clip=4.0 if clip is None else clip)
    elif space == "robust":
        space_x = robust_scale(X, clip=3.0 if clip is None else clip, rows=sub, seed=seed)
    else:
        space_x = np.asarray(X[pool], dtype=np.float32)
    kmap = fit_kernel_map(space_x, landmarks, seed=seed, bandwidth=bandwidth, spacing=spacing)
    feats = kmap.transform(space_x)
    if linear > 0:
        lin = np.empty((len(space_x), 1 + d), dtype=np.float32)
        lin[:, 0] = np.float32(linear)
        sd = space_x.std(axis=0, dtype=np.float64)
        mu = space_x.mean(axis=0, dtype=np.float64)
        for j in range(d):
            lin[:, 1 + j] = (space_x[:, j] - np.float32(mu[j])) * np.float32(linear / (sd[j] if sd[j] > 0 else 1.0))
        feats = np.concatenate([lin, feats], axis=1)
        del lin
    local_fixed = np.searchsorted(pool, fixed)
    pool_coords = None if coords is None else coords[pool]
    sel = maxvol_select(feats, n, fixed=local_fixed, coords=pool_coords, min_distance=min_distance, allowed=allowed[pool],
                        cost=None if cost is None else cost[pool], budget=budget, cost_weight=cost_weight)
    del feats
    rows = sel.rows
    if refine:
        rows = refine_coverage(space_x, rows, len(local_fixed), allowed[pool], refine, pool_coords, min_distance)
    if match:
        rows = match_marginals(X[pool], space_x, rows, len(local_fixed), allowed[pool], match, pool_coords, min_distance,
                               cost=None if cost is None else cost[pool], seed=seed)
    return pool[rows], kmap.size + (1 + d if linear > 0 else 0)


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


def _points_frame(cand: Candidates, rows: np.ndarray, n_fixed: int, grid, pixel_m, with_nearest: bool = True):
    """GeoDataFrame of the design: pick order, legacy flag, row/col, x/y (cell centres), lon/lat,
    covariate values and the distance (ground metres) to the nearest other point."""
    import geopandas as gpd
    from pyproj import Transformer
    from scipy.spatial import cKDTree

    r, c = cand.rows[rows], cand.cols[rows]
    x, y = grid.xy(r, c)
    lon, lat = Transformer.from_crs(grid.crs, "EPSG:4326", always_xy=True).transform(x, y)
    if len(rows) > 1 and with_nearest:
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
    if with_nearest:
        frame["nearest_m"] = nearest
    return gpd.GeoDataFrame(frame, geometry=gpd.points_from_xy(x, y), crs=grid.crs)


#: Columns soil-sample writes about the points themselves (not soil properties): soil-evaluate skips them.
POINT_COLUMNS = ("order", "legacy", "row", "col", "x", "y", "lon", "lat", "nearest_m")


def _inputs(cfg: SoilSampleConfig) -> list[Path]:
    return [p for p in [*cfg.covariates, cfg.dem, cfg.boundary, cfg.existing, cfg.access, *cfg.exclude, cfg.strata,
                        cfg.cost] if p is not None]

"""``soil-evaluate``: how well do sampling designs represent measured soil properties?

As in the maxvol soil-sampling paper, each method selects k of the measured points (from covariates
sampled at the points, or from the properties themselves), and for every soil property the selected
subset's distribution is compared with that of all points: the 1-D Wasserstein distance (property
units; also divided by the property's standard deviation so properties can be averaged) and the
Kolmogorov-Smirnov statistic. The D-criterion is log det(X_S^T X_S) of the standardised linear features
with an intercept (higher = more informative design). Random methods are repeated and summarised by
mean and standard deviation.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Literal, Optional

import numpy as np
from pydantic import Field, field_validator

from geotool.config import GeotoolConfig
from geotool.errors import ConfigError, EmptyDataError, InputFileError
from geotool.soil.features import FeatureMode, design_matrix

log = logging.getLogger("geotool.soil")

EvalMethod = Literal["maxvol", "clhs", "random", "kmeans"]
DETERMINISTIC = {"maxvol"}


class SoilEvaluateConfig(GeotoolConfig):
    """Settings of ``geotool soil-evaluate``."""

    measured: Path = Field(..., description="Measured points: CSV with x/y columns or a vector file.")
    output: Path = Field(..., description="Summary CSV; per-design rows go to <stem>_designs.csv.")
    x_column: str = Field("x", description="X column of a CSV.")
    y_column: str = Field("y", description="Y column of a CSV.")
    crs: Optional[str] = Field(None, description="CRS of a CSV's coordinates.")
    properties: Optional[list[str]] = Field(None, description="Property columns (default: numeric, non-id, non-coordinate).")
    covariates: list[Path] = Field(default_factory=list, description="Rasters sampled at the points as selection features.")
    designs: list[Path] = Field(default_factory=list, description="Design point files to score.")
    methods: list[EvalMethod] = Field(default_factory=lambda: ["maxvol", "clhs", "random"], description="Selection methods.")
    k: list[int] = Field(default_factory=lambda: [10, 15, 20, 25, 30], description="Subset sizes.")
    repeats: int = Field(100, ge=1, description="Repeats of the random methods.")
    features: FeatureMode = Field(
        "kernel", description="maxvol features: kernel (soil-sample's default design) or the paper's linear, quadratic "
        "or cubic polynomial features (the paper's evaluation protocol used linear).")
    match_marginals: int = Field(0, ge=0, description="Marginal-matching rounds of the kernel design (as in soil-sample).")
    seed: int = Field(0, description="Random seed.")
    plot: Optional[Path] = Field(None, description="PNG chart (default: output with .png).")

    @field_validator("output")
    @classmethod
    def _csv(cls, value: Path) -> Path:
        if value.suffix.lower() != ".csv":
            raise ValueError(f"{value}: the metrics table is a CSV; use a .csv file name")
        return value

    @field_validator("k")
    @classmethod
    def _positive(cls, value: list[int]) -> list[int]:
        if not value or min(value) < 2:
            raise ValueError("subset sizes must be at least 2")
        return sorted(set(value))


def load_measured(cfg: SoilEvaluateConfig):
    """Measured points as a GeoDataFrame and the list of property columns."""
    from geotool.io.vector import read_vector, require_features

    if cfg.measured.suffix.lower() == ".csv" and cfg.crs is None:
        raise ConfigError(f"{cfg.measured} is a CSV: say which CRS its coordinates are in with --crs (e.g. EPSG:32637)")
    points = read_vector(cfg.measured, x_column=cfg.x_column, y_column=cfg.y_column, csv_crs=cfg.crs)
    require_features(points, cfg.measured, "points")
    if cfg.properties:
        missing = [p for p in cfg.properties if p not in points.columns]
        if missing:
            raise InputFileError(f"{cfg.measured} has no column {', '.join(missing)}; available: {', '.join(map(str, points.columns))}")
        props = list(cfg.properties)
    else:
        from pandas.api.types import is_numeric_dtype

        from geotool.soil.design import POINT_COLUMNS

        skip = {cfg.x_column, cfg.y_column, points.geometry.name, *POINT_COLUMNS}  # where a point is, not its soil
        props = []
        for col in points.columns:
            if col in skip or not is_numeric_dtype(points[col].dtype) or points[col].dtype == bool:
                continue
            values = points[col].to_numpy()
            if np.issubdtype(values.dtype, np.integer) and len(np.unique(values)) == len(values):
                continue  # an identifier (e.g. Point = 1..51), not a property
            props.append(col)
    if not props:
        raise EmptyDataError(f"{cfg.measured} has no numeric property column; name them with --properties")
    complete = points[props].notna().all(axis=1).to_numpy()
    if not complete.all():
        log.warning("%d measured points with missing property values are left out", int((~complete).sum()))
        points = points[complete].reset_index(drop=True)
    return points, props


def selection_features(cfg: SoilEvaluateConfig, points, props: list[str]) -> tuple[np.ndarray, object]:
    """Features the methods select on: covariates sampled at the points, else the properties."""
    if not cfg.covariates:
        return points[props].to_numpy(dtype=np.float64), points
    from geotool.io.raster import RasterSource

    with RasterSource(cfg.covariates) as src:
        pts = points.to_crs(src.grid.crs)
        rows, cols = src.grid.rowcol(pts.geometry.x.to_numpy(), pts.geometry.y.to_numpy())
        data, valid = src.read(dtype=np.float64)
    inside = (rows >= 0) & (rows < data.shape[1]) & (cols >= 0) & (cols < data.shape[2])
    ok = inside.copy()
    ok[inside] = valid[rows[inside], cols[inside]]
    if ok.sum() < 3:
        raise EmptyDataError(f"fewer than 3 measured points of {cfg.measured} fall on valid cells of the covariates")
    if not ok.all():
        log.warning("%d measured points outside the covariates or on nodata are left out", int((~ok).sum()))
    return data[:, rows[ok], cols[ok]].T, points[ok].reset_index(drop=True)


def _match_design(path: Path, points) -> np.ndarray:
    """Indices of the measured points nearest to each point of a design file."""
    from scipy.spatial import cKDTree

    from geotool.io.vector import read_vector

    design = read_vector(path).to_crs(points.crs)
    tree = cKDTree(np.column_stack([points.geometry.x, points.geometry.y]))
    _, idx = tree.query(np.column_stack([design.geometry.x, design.geometry.y]))
    return np.unique(idx)


def score_subset(values: np.ndarray, subset: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per property: Wasserstein distance and KS statistic between the subset and all points."""
    from scipy.stats import ks_2samp, wasserstein_distance

    w = np.array([wasserstein_distance(values[subset, j], values[:, j]) for j in range(values.shape[1])])
    ks = np.array([ks_2samp(values[subset, j], values[:, j]).statistic for j in range(values.shape[1])])
    return w, ks


def run_soil_evaluate(cfg: SoilEvaluateConfig):
    """Score every method and design; write the summary CSV, per-design CSV, chart and sidecar."""
    import pandas as pd

    from geotool.config import write_sidecar
    from geotool.io.files import write_table
    from geotool.progress import progress_bar
    from geotool.soil.baselines import clhs_design, kmeans_design, random_design
    from geotool.soil.design import kernel_maxvol
    from geotool.soil.maxvol import design_log_det, maxvol_select

    points, props = load_measured(cfg)
    feats, points = selection_features(cfg, points, props)
    values = points[props].to_numpy(dtype=np.float64)
    names = [f"f{j}" for j in range(feats.shape[1])]
    A_lin, _, _ = design_matrix(feats, names, "linear")
    A_sel = None if cfg.features == "kernel" else design_matrix(feats, names, cfg.features)[0]
    X = A_lin[:, 1:]
    n_points = len(points)
    too_big = [k for k in cfg.k if k >= n_points]
    if too_big:
        raise ConfigError(f"-k {','.join(map(str, too_big))} is not smaller than the {n_points} usable measured points")
    stds = values.std(axis=0)
    stds[stds == 0] = 1.0
    seeds = np.random.SeedSequence(cfg.seed)
    records = []

    def record(method: str, k: int, rep: int, subset: np.ndarray) -> None:
        w, ks = score_subset(values, subset)
        log_det = design_log_det(A_lin, subset)
        for j, prop in enumerate(props):
            records.append((method, k, rep, prop, w[j], w[j] / stds[j], ks[j], log_det))

    total = sum(len(cfg.k) * (1 if m in DETERMINISTIC else cfg.repeats) for m in cfg.methods) + len(cfg.designs)
    with progress_bar("soil-evaluate: selections scored", total) as bar:
        for method in cfg.methods:
            start = time.perf_counter()
            for k in cfg.k:
                reps = 1 if method in DETERMINISTIC else cfg.repeats
                for rep, child in enumerate(seeds.spawn(reps)):
                    rng = np.random.default_rng(child)
                    if method == "maxvol" and A_sel is None:
                        subset = kernel_maxvol(X, k, seed=cfg.seed, match=cfg.match_marginals)[0]
                    elif method == "maxvol":
                        subset = maxvol_select(A_sel, k).rows
                    elif method == "random":
                        subset = random_design(n_points, k, rng)
                    elif method == "clhs":
                        subset = clhs_design(X, k, rng, iterations=2000)
                    else:
                        subset = kmeans_design(X, k, rng)
                    record(method, k, rep, subset)
                    bar.advance()
            log.info("soil-evaluate: %s scored at k = %s in %.1f s", method, ",".join(map(str, cfg.k)),
                     time.perf_counter() - start)
        for path in cfg.designs:
            subset = _match_design(path, points)
            record(path.stem, len(subset), 0, subset)
            bar.advance()

    table = pd.DataFrame.from_records(
        records, columns=["method", "k", "repeat", "property", "wasserstein", "wasserstein_per_sd", "ks", "log_det"]
    )
    summary = (
        table.groupby(["method", "k", "property"], sort=False)
        .agg(wasserstein=("wasserstein", "mean"), wasserstein_sd=("wasserstein", "std"),
             wasserstein_per_sd=("wasserstein_per_sd", "mean"), ks=("ks", "mean"), ks_sd=("ks", "std"),
             log_det=("log_det", "mean"), repeats=("repeat", "nunique"))
        .reset_index()
    )
    write_table(cfg.output, summary)
    designs_csv = cfg.output.with_name(cfg.output.stem + "_designs.csv")
    write_table(designs_csv, table)
    plot_path = cfg.plot or cfg.output.with_suffix(".png")
    from geotool.soil.plots import plot_evaluation

    plot_evaluation(plot_path, table)
    write_sidecar(cfg.output, "soil-evaluate", cfg, inputs=[cfg.measured, *cfg.covariates, *cfg.designs], seed=cfg.seed,
                  results={"properties": props, "n_points": n_points, "designs_csv": str(designs_csv),
                           "plot": str(plot_path)})
    return overview(table)


def overview(table):
    """Per method and k: mean over properties and repeats of W/sd and KS, and the mean log det."""
    per_design = table.groupby(["method", "k", "repeat"], sort=False).agg(
        w_sd=("wasserstein_per_sd", "mean"), ks=("ks", "mean"), log_det=("log_det", "first"))
    return per_design.groupby(["method", "k"], sort=False).agg(
        w_sd_mean=("w_sd", "mean"), w_sd_std=("w_sd", "std"), ks_mean=("ks", "mean"), ks_std=("ks", "std"),
        log_det=("log_det", "mean"), designs=("w_sd", "size")).reset_index()

"""The ``soil-evaluate`` pipeline: compare sampling designs on measured points, as the maxvol paper does.

For each method and design size N, a subset of N measured points is chosen (maxvol once: it is
deterministic; random, clhs and kmeans ``repeats`` times with seeds ``seed + i``), using as features the
covariates sampled at the points (rasters given) or table columns. For every measured property the
subset's distribution is compared with that of all points by the 1-D Wasserstein distance (also divided
by the property's standard deviation, so properties can be averaged) and the Kolmogorov-Smirnov
statistic; the design's D-criterion is log det of its feature matrix (see
:func:`geotool.soil.maxvol.log_volume`). Existing design files (``--design``) are evaluated by matching
each of their points to the nearest measured point.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from geotool.errors import ConfigError, EmptyDataError, InputFileError, OutputError
from geotool.soil.config import SoilEvaluateConfig


@dataclass
class EvaluateResult:
    """Per-property rows (``table``) and per method/N means over properties (``summary``)."""

    table: object
    summary: object
    warnings: list[str] = field(default_factory=list)


def default_properties(frame, exclude: set[str]) -> list[str]:
    """Numeric columns except coordinates and identifiers.

    An identifier is an integer column named like one (id, fid, point, no, number, index, sample) or
    holding a run of consecutive distinct integers over at least 10 rows (like Kshen's ``Point`` 1..51).
    """
    import re

    import pandas as pd

    props = []
    for col in frame.columns:
        if col in exclude or col == "geometry" or not pd.api.types.is_numeric_dtype(frame[col]):
            continue
        values = frame[col].dropna()
        if pd.api.types.is_integer_dtype(values) and values.is_unique:
            named = re.fullmatch(r"(?i)(f?id|point|pt|no|num|number|index|sample)(_?id)?", str(col)) is not None
            run = len(values) >= 10 and int(values.max()) - int(values.min()) + 1 == len(values)
            if named or run:
                continue
        props.append(col)
    return props


def design_metrics(idx: np.ndarray, props: np.ndarray, A: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Wasserstein and KS distance per property (columns of ``props``) between rows ``idx`` and all rows.

    The D-criterion is log det of the design's *linear* feature rows ``A`` (intercept + standardised
    covariates), so it is comparable across methods and feature expansions.
    """
    from scipy.stats import ks_2samp, wasserstein_distance

    from geotool.soil.maxvol import log_volume

    w = np.empty(props.shape[1])
    ks = np.empty(props.shape[1])
    for j in range(props.shape[1]):
        col = props[:, j]
        ok = np.isfinite(col)
        sub = col[idx][ok[idx]]
        w[j] = wasserstein_distance(sub, col[ok]) if len(sub) else np.nan
        ks[j] = ks_2samp(sub, col[ok]).statistic if len(sub) else np.nan
    return w, ks, log_volume(A[idx])


def choose(method: str, n: int, A: np.ndarray, Z: np.ndarray, xy: np.ndarray, seed: int, clhs_iterations: int) -> np.ndarray:
    """Indices of ``n`` of the measured points by ``method``."""
    from geotool.soil import baselines
    from geotool.soil.maxvol import maxvol_select

    if method == "maxvol":
        return maxvol_select(A, n, xy).indices
    if method == "random":
        return baselines.random_design(len(A), n, xy, 0.0, None, seed)
    if method == "clhs":
        return baselines.clhs_design(Z, n, xy, 0.0, None, None, seed, clhs_iterations)
    return baselines.kmeans_design(Z, n, xy, 0.0, None, seed)


def _load_points(cfg: SoilEvaluateConfig, grid):
    from geotool.io.vector import read_vector, require_features

    gdf = read_vector(
        cfg.measured, target=grid, x_column=cfg.x_column, y_column=cfg.y_column, csv_crs=cfg.crs,
        raster_name=str(cfg.dem or (cfg.covariates[0] if cfg.covariates else "")) or None,
    )
    require_features(gdf, cfg.measured, "measured points")
    if not (gdf.geometry.geom_type == "Point").all():
        raise InputFileError(f"{cfg.measured}: measured data must be points")
    return gdf.reset_index(drop=True)


def run_soil_evaluate(cfg: SoilEvaluateConfig) -> EvaluateResult:
    """Evaluate the configured methods and design files; write the CSV table and plot if asked."""
    import pandas as pd

    from geotool.soil.features import FeatureSpace, check_columns
    from geotool.soil.geometry import ground_xy

    if cfg.output is not None and cfg.output.suffix.lower() != ".csv":
        raise OutputError(f"{cfg.output}: soil-evaluate writes a CSV table; give a .csv path")
    if cfg.plot is not None and cfg.plot.suffix.lower() != ".png":
        raise OutputError(f"{cfg.plot}: --plot writes PNG; give a .png path")
    warnings: list[str] = []
    cov = None
    if cfg.dem is not None or cfg.covariates:
        from geotool.soil.covariates import load_covariates

        cov = load_covariates(cfg)
    gdf = _load_points(cfg, cov.grid if cov else None)
    x, y = gdf.geometry.x.to_numpy(), gdf.geometry.y.to_numpy()
    exclude = {cfg.x_column, cfg.y_column}
    props = cfg.properties or default_properties(gdf, exclude)
    missing = [p for p in props if p not in gdf.columns]
    if missing:
        raise ConfigError(f"{cfg.measured} has no column {', '.join(missing)}; available: {', '.join(map(str, gdf.columns))}")
    if not props:
        raise EmptyDataError(f"{cfg.measured} has no numeric property column to compare; name them with --properties")
    if cov is not None:
        rows, cols = cov.grid.rowcol(x, y)
        inside = (rows >= 0) & (rows < cov.grid.height) & (cols >= 0) & (cols < cov.grid.width)
        ok = inside.copy()
        ok[inside] = cov.valid[rows[inside], cols[inside]]
        if not ok.any():
            raise EmptyDataError(f"no point of {cfg.measured} falls on a valid covariate cell; check the CRS (--crs)")
        if not ok.all():
            warnings.append(f"{int((~ok).sum())} of {len(ok)} measured points lie outside the covariates or on nodata and are left out")
        gdf, x, y, rows, cols = gdf[ok].reset_index(drop=True), x[ok], y[ok], rows[ok], cols[ok]
        values, names = cov.data[:, rows, cols].T, cov.names
        xy = np.column_stack(ground_xy(cov.grid, x, y))
    else:
        names = cfg.features or props
        bad = [c for c in names if c not in gdf.columns]
        if bad:
            raise ConfigError(f"{cfg.measured} has no feature column {', '.join(bad)}")
        values = gdf[names].to_numpy(np.float64)
        keep = np.isfinite(values).all(axis=1)
        gdf, values, x, y = gdf[keep].reset_index(drop=True), values[keep], x[keep], y[keep]
        xy = np.column_stack([x, y])
    report = check_columns(values, names)
    warnings += report.warnings()
    values = values[:, [names.index(n) for n in report.kept]]
    space = FeatureSpace.fit(
        values, report.kept, cfg.expansion, xy if cfg.coords else None, cfg.kernel_landmarks, cfg.kernel_scale, cfg.seed
    )
    A = space.transform(values, xy if cfg.coords else None, dtype=np.float64)
    Z = (values - space.mean) / space.std
    A_lin = np.hstack([np.ones((len(Z), 1)), Z])  # the D-criterion's basis, whatever the expansion
    P = gdf[props].to_numpy(np.float64)
    sd = np.nanstd(P, axis=0)
    sd[sd == 0] = 1.0
    too_big = [n for n in cfg.sizes if n > len(A)]
    if too_big:
        raise ConfigError(f"design size {too_big[0]} is more than the {len(A)} usable measured points; lower --sizes")

    records = []
    runs: list[tuple[str, int, int, np.ndarray]] = []
    from geotool.progress import progress_bar

    jobs = [(m, n, i) for m in cfg.methods for n in cfg.sizes for i in range(1 if m == "maxvol" else cfg.repeats)]
    with progress_bar("soil-evaluate designs", total=len(jobs)) as bar:
        for method, n, i in jobs:
            runs.append((method, n, i, choose(method, n, A, Z, xy, cfg.seed + i, cfg.clhs_iterations)))
            bar.advance()
    for path in cfg.designs:
        runs.append((path.stem, *_match_design(path, gdf)))
    for method, n, rep, idx in runs:
        w, ks, ld = design_metrics(idx, P, A_lin)
        for j, p in enumerate(props):
            records.append({"method": method, "n": n, "repeat": rep, "property": p, "wasserstein": w[j],
                            "wasserstein_norm": w[j] / sd[j], "ks": ks[j], "log_det": ld})
    raw = pd.DataFrame.from_records(records)
    table = (
        raw.groupby(["method", "n", "property"], sort=False)
        .agg(wasserstein=("wasserstein", "mean"), wasserstein_std=("wasserstein", "std"),
             wasserstein_norm=("wasserstein_norm", "mean"), ks=("ks", "mean"), ks_std=("ks", "std"),
             log_det=("log_det", "mean"), repeats=("repeat", "nunique"))
        .reset_index()
    )
    per_run = raw.groupby(["method", "n", "repeat"], sort=False).agg(
        wasserstein_norm=("wasserstein_norm", "mean"), ks=("ks", "mean"), log_det=("log_det", "first")
    ).reset_index()
    summary = (
        per_run.groupby(["method", "n"], sort=False)
        .agg(wasserstein_norm=("wasserstein_norm", "mean"), wasserstein_norm_std=("wasserstein_norm", "std"),
             ks=("ks", "mean"), ks_std=("ks", "std"), log_det=("log_det", "mean"), repeats=("repeat", "nunique"))
        .reset_index()
    )
    fig = None
    if cfg.plot is not None:
        from geotool.soil.plot import evaluate_figure

        fig = evaluate_figure(summary, f"{cfg.measured.name}: {len(A)} points, {len(props)} properties")
    if cfg.output is not None:
        from geotool.config import write_sidecar
        from geotool.io.files import write_table

        write_table(cfg.output, table)
        inputs = [cfg.measured, *(cov.paths if cov else []), *cfg.designs]
        write_sidecar(cfg.output, "soil-evaluate", cfg, inputs=[str(p) for p in inputs], seed=cfg.seed,
                      results={"points": len(A), "properties": props, "features": space.columns()})
    if fig is not None:
        from geotool.io.figures import save_figure

        save_figure(fig, cfg.plot)
    return EvaluateResult(table, summary, warnings)


def _match_design(path: Path, measured) -> tuple[int, int, np.ndarray]:
    """Indices of the measured points nearest to each point of a design file (duplicates removed)."""
    from scipy.spatial import cKDTree

    from geotool.io.vector import read_vector

    csv_crs = measured.crs
    if path.suffix.lower() == ".csv":  # geotool's CSV outputs carry their CRS in a "crs" column
        from geotool.io.files import read_table

        frame = read_table(path)
        if "crs" in frame.columns and len(frame):
            csv_crs = str(frame["crs"].iloc[0])
    gdf = read_vector(path, require_overlap=False, csv_crs=csv_crs)
    gdf = gdf.to_crs(measured.crs)
    if len(gdf) == 0:
        raise EmptyDataError(f"{path} holds no points")
    _, idx = cKDTree(np.column_stack([measured.geometry.x, measured.geometry.y])).query(
        np.column_stack([gdf.geometry.x, gdf.geometry.y])
    )
    idx = np.unique(idx)
    return len(idx), 0, idx


def format_summary(summary) -> str:
    """A plain-text table: method, N, repeats, mean W1/std, mean KS, log det."""
    lines = [f"{'method':<10} {'N':>4} {'reps':>5} {'W1/std':>16} {'KS':>16} {'log det':>9}"]
    for row in summary.itertuples(index=False):
        wsd = "" if np.isnan(row.wasserstein_norm_std) else f"+-{row.wasserstein_norm_std:.3f}"
        ksd = "" if np.isnan(row.ks_std) else f"+-{row.ks_std:.3f}"
        lines.append(
            f"{row.method:<10} {row.n:>4} {row.repeats:>5} {row.wasserstein_norm:>9.3f}{wsd:<7} {row.ks:>9.3f}{ksd:<7} {row.log_det:>9.2f}"
        )
    return "\n".join(lines)

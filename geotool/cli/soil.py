"""``geotool soil-sample`` and ``geotool soil-evaluate``: maxvol soil-sampling design and its evaluation."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from geotool.cli._common import STATE, handle_errors, parse_int_list, parse_str_list

PANEL = "Soil"


def register(app: typer.Typer) -> None:
    """Add the soil commands to ``app``."""
    app.command("soil-sample", rich_help_panel=PANEL)(soil_sample)
    app.command("soil-evaluate", rich_help_panel=PANEL)(soil_evaluate)


@handle_errors
def soil_sample(
    covariates: Annotated[Optional[list[Path]], typer.Argument(help="Covariate GeoTIFFs on one grid (or folders of them).", show_default=False)] = None,
    n: Annotated[Optional[int], typer.Option("-n", help="Number of points, existing ones included.")] = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Points file: .gpkg, .geojson, .shp or .csv.")] = None,
    dem: Annotated[Optional[Path], typer.Option(help="DEM (m) on the same grid; elevation becomes a covariate.")] = None,
    terrain: Annotated[Optional[str], typer.Option(help="Terrain covariates from --dem: slope,aspect,curvature,twi.")] = None,
    flow: Annotated[Optional[str], typer.Option(help="Flow routing for the TWI: mfd or d8.")] = None,
    boundary: Annotated[Optional[Path], typer.Option(help="Field polygon(s); only cells inside are candidates.")] = None,
    existing: Annotated[Optional[Path], typer.Option(help="Legacy points to keep (vector, or CSV with --existing-x/-y).")] = None,
    existing_x: Annotated[Optional[str], typer.Option(help="X column of a CSV --existing.")] = None,
    existing_y: Annotated[Optional[str], typer.Option(help="Y column of a CSV --existing.")] = None,
    existing_crs: Annotated[Optional[str], typer.Option(help="CRS of a CSV --existing, e.g. EPSG:32637.")] = None,
    min_distance: Annotated[Optional[float], typer.Option(help="Minimum distance between points, ground metres.")] = None,
    method: Annotated[Optional[str], typer.Option(help="maxvol, random, clhs or kmeans.")] = None,
    features: Annotated[Optional[str], typer.Option(help="maxvol features: kernel (default, measured best), linear, quadratic or cubic.")] = None,
    coordinates: Annotated[Optional[bool], typer.Option("--coordinates/--no-coordinates", help="Use cell coordinates as features too.")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Random seed.")] = None,
    nodata: Annotated[Optional[float], typer.Option(help="Nodata value overriding the files' own.")] = None,
    resample: Annotated[Optional[str], typer.Option(help="Resample misaligned layers onto the first: nearest, bilinear, cubic.")] = None,
    plot: Annotated[Optional[Path], typer.Option(help="PNG map of the points over a hillshade.")] = None,
    kernel_landmarks: Annotated[Optional[int], typer.Option(help="Kernel features: number of landmarks (default N).")] = None,
    kernel_bandwidth: Annotated[Optional[float], typer.Option(help="Kernel RBF width, x the landmark spacing (default 0.3).")] = None,
    kernel_space: Annotated[Optional[str], typer.Option(help="Kernel covariate space: hybrid (default), normal, rank, standard or robust.")] = None,
    kernel_spacing: Annotated[Optional[str], typer.Option(help="Bandwidth unit: median (pairwise landmark distance) or nn (nearest-neighbour).")] = None,
    kernel_linear: Annotated[Optional[float], typer.Option(help="Weight of linear features joined to the RBF ones (0 = none).")] = None,
    kernel_clip: Annotated[Optional[float], typer.Option(help="Clip of the z-scores, sd (hybrid: default 4; robust: default 3).")] = None,
    refine: Annotated[Optional[int], typer.Option(help="Coverage refinement rounds after kernel maxvol (0 = none).")] = None,
    match_marginals: Annotated[Optional[int], typer.Option(help="Rounds of swaps within each point's covariate region that match the field's covariate distributions (0 = none).")] = None,
    feature_memory_mb: Annotated[Optional[float], typer.Option(help="MiB for kernel features; beyond it maxvol runs on a seeded subset of cells.")] = None,
    access: Annotated[Optional[Path], typer.Option(help="Roads/tracks (vector): only cells within --access-buffer of them.", rich_help_panel="Field constraints")] = None,
    access_buffer: Annotated[Optional[float], typer.Option(help="Reach from --access, ground metres.", rich_help_panel="Field constraints")] = None,
    exclude: Annotated[Optional[list[Path]], typer.Option(help="Polygons never sampled: buildings, water, private land (repeatable).", rich_help_panel="Field constraints")] = None,
    backups: Annotated[Optional[int], typer.Option(help="Replacement cells per new point, written to <output>_backups.", rich_help_panel="Field constraints")] = None,
    strata: Annotated[Optional[Path], typer.Option(help="Strata: integer raster on the covariates' grid, or polygons.", rich_help_panel="Field constraints")] = None,
    strata_column: Annotated[Optional[str], typer.Option(help="Stratum id column of strata polygons.", rich_help_panel="Field constraints")] = None,
    allocation: Annotated[Optional[str], typer.Option(help="Points per stratum: proportional, equal, or a polygon column of counts.", rich_help_panel="Field constraints")] = None,
    cost: Annotated[Optional[Path], typer.Option(help="Cost raster (travel/effort per cell, >= 0) on the covariates' grid.", rich_help_panel="Field constraints")] = None,
    budget: Annotated[Optional[float], typer.Option(help="Total cost of the new points never exceeds this.", rich_help_panel="Field constraints")] = None,
    cost_weight: Annotated[Optional[float], typer.Option(help="Trade-off of maxvol gain against cost (0 = none).", rich_help_panel="Field constraints")] = None,
    config: Annotated[Optional[Path], typer.Option(help="YAML file with any of these settings (flags override it).")] = None,
) -> None:
    """Choose N soil-sampling locations from covariate rasters by maxvol (or a baseline)."""
    from geotool.config import load_config
    from geotool.soil.design import SoilSampleConfig, run_soil_sample

    cfg = load_config(
        SoilSampleConfig,
        config,
        {
            "covariates": [str(p) for p in covariates] if covariates else None,
            "n": n,
            "output": output,
            "dem": dem,
            "terrain": parse_str_list(terrain),
            "flow": flow,
            "boundary": boundary,
            "existing": existing,
            "existing_x": existing_x,
            "existing_y": existing_y,
            "existing_crs": existing_crs,
            "min_distance": min_distance,
            "method": method,
            "features": features,
            "coordinates": coordinates,
            "seed": seed,
            "nodata": nodata,
            "resample": resample,
            "plot": plot,
            "feature_memory_mb": feature_memory_mb,
            "kernel_landmarks": kernel_landmarks,
            "kernel_bandwidth": kernel_bandwidth,
            "kernel_space": kernel_space,
            "kernel_spacing": kernel_spacing,
            "kernel_linear": kernel_linear,
            "kernel_clip": kernel_clip,
            "refine": refine,
            "match_marginals": match_marginals,
            "access": access,
            "access_buffer": access_buffer,
            "exclude": exclude or None,
            "backups": backups,
            "strata": strata,
            "strata_column": strata_column,
            "allocation": allocation,
            "cost": cost,
            "budget": budget,
            "cost_weight": cost_weight,
        },
    )
    result = run_soil_sample(cfg)
    if not STATE.quiet:
        for line in result.report.warnings():
            typer.echo(f"warning: {line}", err=True)
        rep = result.representativeness
        typer.echo(
            f"{len(result.points)} points ({cfg.method}, {result.n_candidates} candidate cells, "
            f"{len(result.feature_names)} features, log det {result.log_det:.3f}; covariate Wasserstein / sd "
            f"{rep['wasserstein_per_sd']:.3f}, random designs' median {rep['random_median']['wasserstein_per_sd']:.3f}) -> "
            + ", ".join(str(p) for p in result.written)
        )


@handle_errors
def soil_evaluate(
    measured: Annotated[Optional[Path], typer.Argument(help="Measured points: CSV (x, y, properties) or a vector file (not with --sizes).", show_default=False)] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="CSV table of the metrics (a .png plot is written beside it).")] = Path("soil_evaluation.csv"),
    sizes: Annotated[Optional[str], typer.Option(help="Sample-size advice on the --covariate grid itself, e.g. 10:100:10 (no measured points).")] = None,
    x_column: Annotated[str, typer.Option(help="X (easting) column of a CSV.")] = "x",
    y_column: Annotated[str, typer.Option(help="Y (northing) column of a CSV.")] = "y",
    crs: Annotated[Optional[str], typer.Option(help="CRS of a CSV's x/y, e.g. EPSG:32637.")] = None,
    properties: Annotated[Optional[str], typer.Option(help="Property columns to compare (default: every numeric column).")] = None,
    covariates: Annotated[Optional[list[Path]], typer.Option("--covariate", help="Covariate raster(s) sampled at the points for the selection (repeatable); default: the properties themselves.")] = None,
    design: Annotated[Optional[list[Path]], typer.Option("--design", help="Point files of designs to score; each point is matched to the nearest measured point (repeatable).")] = None,
    methods: Annotated[str, typer.Option(help="Methods that select k of the measured points: maxvol,clhs,random,kmeans.")] = "maxvol,clhs,random",
    k: Annotated[str, typer.Option("-k", help="Subset sizes, comma-separated.")] = "10,15,20,25,30",
    repeats: Annotated[int, typer.Option(help="Repeats for the random methods (random, clhs, kmeans).")] = 100,
    features: Annotated[str, typer.Option(help="maxvol features: kernel (soil-sample's default design) or the paper's linear, quadratic or cubic.")] = "kernel",
    match_marginals: Annotated[int, typer.Option(help="Marginal-matching rounds of the kernel design (as in soil-sample).")] = 0,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    plot: Annotated[Optional[Path], typer.Option(help="PNG chart (default: the output name with .png).")] = None,
) -> None:
    """Compare sampling designs on measured soil data (Wasserstein, KS, D-criterion per property), or with
    --sizes, how representativeness and the D-criterion of the default design improve with N."""
    from geotool.config import load_config
    from geotool.errors import ConfigError

    if sizes is not None:
        from geotool.soil.sizes import SoilSizesConfig, parse_sizes, run_soil_sizes

        if measured is not None:
            raise ConfigError("--sizes works on the covariate grid alone: drop the measured points argument")
        if not covariates:
            raise ConfigError("--sizes needs the candidate grid: give the covariate rasters with --covariate")
        cfg_sizes = load_config(SoilSizesConfig, None, dict(covariates=covariates, sizes=parse_sizes(sizes), output=output,
                                                            seed=seed, plot=plot))
        table = run_soil_sizes(cfg_sizes)
        if not STATE.quiet:
            _print_sizes(table)
        return
    if measured is None:
        raise ConfigError("give the measured points file (or --sizes with --covariate for sample-size advice)")
    from geotool.soil.evaluate import SoilEvaluateConfig, run_soil_evaluate

    cfg = load_config(SoilEvaluateConfig, None, dict(
        measured=measured,
        output=output,
        x_column=x_column,
        y_column=y_column,
        crs=crs,
        properties=parse_str_list(properties),
        covariates=covariates or [],
        designs=design or [],
        methods=parse_str_list(methods) or [],
        k=parse_int_list(k, "-k") or [],
        repeats=repeats,
        features=features,
        match_marginals=match_marginals,
        seed=seed,
        plot=plot,
    ))
    summary = run_soil_evaluate(cfg)
    if not STATE.quiet:
        _print_overview(summary)


def _print_overview(summary) -> None:
    """Rich table of :func:`geotool.soil.evaluate.overview` on stdout."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Design quality (mean over properties; lower W/sd and KS are better, higher log det is better)")
    for col in ("method", "k", "W/sd mean", "W/sd sd", "KS mean", "KS sd", "log det", "designs"):
        table.add_column(col, justify="right" if col not in ("method",) else "left")
    for row in summary.itertuples(index=False):
        table.add_row(row.method, str(row.k), f"{row.w_sd_mean:.3f}", _fmt(row.w_sd_std), f"{row.ks_mean:.3f}",
                      _fmt(row.ks_std), f"{row.log_det:.2f}", str(row.designs))
    Console(width=120).print(table)


def _print_sizes(table) -> None:
    """Rich table of the sample-size advice on stdout."""
    from rich.console import Console
    from rich.table import Table

    out = Table(title="Sample-size advice (lower W/sd, KS, JSD and higher log det are better)")
    for col in ("design", "N", "W/sd", "KS", "JSD", "log det"):
        out.add_column(col, justify="left" if col == "design" else "right")
    for row in table.itertuples(index=False):
        out.add_row(row.design, str(row.n), f"{row.wasserstein_per_sd:.3f}", f"{row.ks:.3f}", f"{row.jsd:.3f}",
                    f"{row.log_det:.2f}")
    Console(width=120).print(out)


def _fmt(value: float) -> str:
    return "-" if value != value else f"{value:.3f}"

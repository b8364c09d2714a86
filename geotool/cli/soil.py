"""CLI: ``geotool soil-sample`` and ``geotool soil-evaluate`` (panel "Soil").

Only typer, the standard library and :mod:`geotool.cli._common` at top level: the pipelines (numpy,
rasterio, geopandas, scipy) are imported inside the command bodies, and torch never.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from geotool.cli._common import STATE, handle_errors, parse_int_list, parse_str_list

PANEL = "Soil"


def _feature_overrides(dem, terrain, elevation, resample, nodata, expansion, coords) -> dict:
    return {
        "dem": dem,
        "terrain": (parse_str_list(terrain) or []) if terrain is not None else None,
        "elevation": elevation,
        "resample": resample,
        "nodata": nodata,
        "expansion": expansion,
        "coords": coords,
    }


DemOpt = Annotated[Optional[Path], typer.Option("--dem", help="DEM GeoTIFF (metres); terrain covariates are derived from it.")]
TerrainOpt = Annotated[
    Optional[str],
    typer.Option("--terrain", help="Terrain covariates from --dem, comma-separated: slope,aspect,curvature,twi ('' for none)."),
]
ElevOpt = Annotated[Optional[bool], typer.Option("--elevation/--no-elevation", help="Use the DEM elevation itself as a covariate.")]
ResampleOpt = Annotated[
    Optional[str], typer.Option("--resample", help="Resample layers not on the first grid: nearest, bilinear, cubic, average, mode.")
]
NodataOpt = Annotated[Optional[float], typer.Option("--nodata", help="Nodata value overriding the files' own.")]
ExpansionOpt = Annotated[
    Optional[str], typer.Option("--expansion", help="Features: kernel (default, kernel maxvol), linear, quadratic or cubic.")
]
CoordsOpt = Annotated[Optional[bool], typer.Option("--coords/--no-coords", help="Add cell coordinates as features (default on).")]
ConfigOpt = Annotated[Optional[Path], typer.Option("--config", help="YAML config (flags override it).")]


def soil_sample(
    covariates: Annotated[Optional[list[Path]], typer.Argument(help="Covariate GeoTIFFs (NDVI, slope, ...); optional with --dem.")] = None,
    n_points: Annotated[Optional[int], typer.Option("-n", "--n-points", help="Number of new points N.")] = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Output points: .gpkg, .geojson, .shp or .csv.")] = None,
    dem: DemOpt = None,
    terrain: TerrainOpt = None,
    elevation: ElevOpt = None,
    boundary: Annotated[Optional[Path], typer.Option("--boundary", help="Field polygon(s); only cells inside are candidates.")] = None,
    existing: Annotated[Optional[Path], typer.Option("--existing", help="Existing points kept in the design (vector, or CSV x,y in the raster CRS).")] = None,
    min_distance: Annotated[Optional[float], typer.Option("--min-distance", help="Minimum ground distance between points, metres.")] = None,
    method: Annotated[Optional[str], typer.Option("--method", help="maxvol (default), random, clhs or kmeans.")] = None,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Random seed (kernel landmarks, random, clhs, kmeans).")] = None,
    plot: Annotated[Optional[Path], typer.Option("--plot", help="PNG map of the points over a hillshade.")] = None,
    resample: ResampleOpt = None,
    nodata: NodataOpt = None,
    expansion: ExpansionOpt = None,
    coords: CoordsOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Choose N soil-sampling points over a field by maxvol on covariate rasters."""
    from geotool.config import load_config
    from geotool.soil.config import SoilSampleConfig
    from geotool.soil.design import run_soil_sample

    overrides = {
        "covariates": list(covariates) if covariates else None,
        "n_points": n_points,
        "output": output,
        "boundary": boundary,
        "existing": existing,
        "min_distance": min_distance,
        "method": method,
        "seed": seed,
        "plot": plot,
        **_feature_overrides(dem, terrain, elevation, resample, nodata, expansion, coords),
    }
    cfg = load_config(SoilSampleConfig, config, overrides, preset="soil")
    result = run_soil_sample(cfg)
    for w in result.warnings:
        typer.echo(f"warning: {w}", err=True)
    if not STATE.quiet:
        r = result.results
        typer.echo(
            f"{result.n_new} new points ({result.n_existing} existing kept) from {result.n_candidates} candidate cells, "
            f"{len(result.features)} features, log det {r['log_det_design']:.2f} -> {result.output}"
        )


def soil_evaluate(
    measured: Annotated[Path, typer.Argument(help="Measured points: CSV with coordinate columns, or a vector file.")],
    covariates: Annotated[Optional[list[Path]], typer.Argument(help="Covariate GeoTIFFs sampled at the points as design features.")] = None,
    dem: DemOpt = None,
    terrain: TerrainOpt = None,
    elevation: ElevOpt = None,
    x_column: Annotated[Optional[str], typer.Option("--x-column", help="CSV column of x (easting).")] = None,
    y_column: Annotated[Optional[str], typer.Option("--y-column", help="CSV column of y (northing).")] = None,
    crs: Annotated[Optional[str], typer.Option("--crs", help="CRS of CSV coordinates, e.g. EPSG:32637.")] = None,
    properties: Annotated[Optional[str], typer.Option("--properties", help="Comma-separated property columns (default: all numeric).")] = None,
    features: Annotated[Optional[str], typer.Option("--features", help="Table columns as design features when no rasters are given.")] = None,
    methods: Annotated[Optional[str], typer.Option("--methods", help="Comma-separated: maxvol,clhs,random,kmeans.")] = None,
    sizes: Annotated[Optional[str], typer.Option("--sizes", "-n", help="Comma-separated design sizes, e.g. 10,15,20,25,30.")] = None,
    repeats: Annotated[Optional[int], typer.Option("--repeats", help="Repeats of the random methods.")] = None,
    design: Annotated[Optional[list[Path]], typer.Option("--design", help="A design file to evaluate (repeatable).")] = None,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Base seed; repeat i uses seed + i.")] = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="CSV table of per-property results.")] = None,
    plot: Annotated[Optional[Path], typer.Option("--plot", help="PNG plot of the metrics against N.")] = None,
    resample: ResampleOpt = None,
    nodata: NodataOpt = None,
    expansion: ExpansionOpt = None,
    coords: CoordsOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Compare sampling designs on measured points (Wasserstein, KS, D-criterion)."""
    from geotool.config import load_config
    from geotool.soil.config import SoilEvaluateConfig
    from geotool.soil.evaluate import format_summary, run_soil_evaluate

    overrides = {
        "measured": measured,
        "covariates": list(covariates) if covariates else None,
        "x_column": x_column,
        "y_column": y_column,
        "crs": crs,
        "properties": parse_str_list(properties),
        "features": parse_str_list(features),
        "methods": parse_str_list(methods),
        "sizes": parse_int_list(sizes, "--sizes"),
        "repeats": repeats,
        "designs": list(design) if design else None,
        "seed": seed,
        "output": output,
        "plot": plot,
        **_feature_overrides(dem, terrain, elevation, resample, nodata, expansion, coords),
    }
    cfg = load_config(SoilEvaluateConfig, config, overrides, preset="soil-evaluate")
    result = run_soil_evaluate(cfg)
    for w in result.warnings:
        typer.echo(f"warning: {w}", err=True)
    typer.echo(format_summary(result.summary))


def register(app: typer.Typer) -> None:
    """Add the soil commands to ``app`` under the "Soil" help panel."""
    app.command("soil-sample", rich_help_panel=PANEL)(handle_errors(soil_sample))
    app.command("soil-evaluate", rich_help_panel=PANEL)(handle_errors(soil_evaluate))

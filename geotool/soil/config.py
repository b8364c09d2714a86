"""Configs of ``soil-sample`` and ``soil-evaluate`` (YAML in ``configs/soil.yaml``, flags override)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Optional

from pydantic import Field

from geotool.config import GeotoolConfig

Method = Literal["maxvol", "random", "clhs", "kmeans"]
TerrainName = Literal["slope", "aspect", "curvature", "twi"]
Expansion = Literal["linear", "quadratic", "cubic", "kernel"]
Resampling = Literal["nearest", "bilinear", "cubic", "average", "mode"]


class FeatureConfig(GeotoolConfig):
    """Which covariates become design features, and how."""

    covariates: list[Path] = Field(default_factory=list, description="Covariate GeoTIFFs (any number; a folder expands to its .tif files).")
    dem: Optional[Path] = Field(None, description="DEM GeoTIFF (metres); its grid is the reference grid when given.")
    terrain: list[TerrainName] = Field(
        default_factory=lambda: ["slope", "aspect", "curvature", "twi"],
        description="Terrain covariates derived from --dem (aspect becomes sin and cos).",
    )
    elevation: bool = Field(True, description="Use the DEM elevation itself as a covariate.")
    resample: Optional[Resampling] = Field(None, description="Resample layers that are not on the reference grid (else they are an error).")
    nodata: Optional[float] = Field(None, description="Nodata value overriding the files' own.")
    expansion: Expansion = Field(
        "kernel",
        description="Features from the standardised covariates: linear, quadratic (squares and pairwise products), "
        "cubic, or kernel (Gaussian features against landmark cells: kernel maxvol). kernel with coords was the "
        "measured best on the Kshen field (BENCHMARKS.md, Soil).",
    )
    coords: bool = Field(True, description="Add the cell coordinates (ground metres, standardised) as features.")
    kernel_landmarks: int = Field(1000, ge=1, description="expansion=kernel: landmark cells drawn at random (seeded) from the candidates.")
    kernel_scale: float = Field(0.45, gt=0, description="expansion=kernel: Gaussian bandwidth = kernel_scale * sqrt(number of covariates), standardised units.")


class SoilSampleConfig(FeatureConfig):
    """``geotool soil-sample``: choose N sampling locations over a field."""

    n_points: int = Field(..., ge=1, description="Number of new sampling points N.")
    output: Path = Field(..., description="Output points (.gpkg, .geojson, .shp or .csv).")
    boundary: Optional[Path] = Field(None, description="Field boundary polygon(s); only cells whose centre is inside are candidates.")
    existing: Optional[Path] = Field(None, description="Existing (legacy) points kept in the design (vector, or CSV with x,y in the raster CRS).")
    min_distance: float = Field(0.0, ge=0, description="Minimum ground distance between any two points, metres.")
    method: Method = Field("maxvol", description="Selection method.")
    seed: int = Field(0, description="Random seed: landmarks of kernel maxvol, random, clhs, kmeans (same seed, same output).")
    plot: Optional[Path] = Field(None, description="PNG map of the points over a hillshade.")
    clhs_iterations: int = Field(10000, ge=1, description="Simulated-annealing iterations of clhs.")
    tol: float = Field(0.05, gt=0, description="Square maxvol stops when no coefficient exceeds 1 + tol.")


class SoilEvaluateConfig(FeatureConfig):
    """``geotool soil-evaluate``: compare designs on measured points."""

    measured: Path = Field(..., description="Measured points: CSV with coordinate columns, or a vector file.")
    x_column: str = Field("x", description="CSV column with x (easting) coordinates.")
    y_column: str = Field("y", description="CSV column with y (northing) coordinates.")
    crs: Optional[str] = Field(None, description="CRS of the CSV coordinates, e.g. EPSG:32637.")
    properties: Optional[list[str]] = Field(None, description="Measured properties to compare (default: every numeric column but coordinates and ids).")
    features: Optional[list[str]] = Field(None, description="Table columns used as design features when no rasters are given.")
    methods: list[Method] = Field(default_factory=lambda: ["maxvol", "clhs", "random"], description="Methods to compare.")
    sizes: list[int] = Field(default_factory=lambda: [10, 15, 20, 25, 30], description="Design sizes N.")
    repeats: int = Field(100, ge=1, description="Repeats of the random methods (random, clhs, kmeans).")
    designs: list[Path] = Field(default_factory=list, description="Design files (e.g. soil-sample outputs); each point is matched to the nearest measured point.")
    seed: int = Field(0, description="Base random seed; repeat i uses seed + i.")
    output: Optional[Path] = Field(None, description="CSV table of the per-property results.")
    plot: Optional[Path] = Field(None, description="PNG plot of the metrics against N.")
    clhs_iterations: int = Field(1000, ge=1, description="Simulated-annealing iterations of clhs.")

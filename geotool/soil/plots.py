"""Maps and charts for the soil commands (PNG, Agg backend)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def hillshade(dem: np.ndarray, dx: float, dy: float, azimuth: float = 315.0, altitude: float = 45.0) -> np.ndarray:
    """Hillshade in 0..1 from a DEM (m) with ground pixel size dx, dy (m); NaN stays NaN."""
    gy, gx = np.gradient(np.where(np.isnan(dem), np.nanmean(dem), dem), dy, dx)
    slope = np.pi / 2 - np.arctan(np.hypot(gx, gy))
    aspect = np.arctan2(-gx, gy)
    az, alt = np.radians(360 - azimuth + 90), np.radians(altitude)
    shade = np.sin(alt) * np.sin(slope) + np.cos(alt) * np.cos(slope) * np.cos(az - aspect)
    shade = (shade - np.nanmin(shade)) / max(np.nanmax(shade) - np.nanmin(shade), 1e-12)
    return np.where(np.isnan(dem), np.nan, shade)


def plot_design(path: Path, background: np.ndarray, grid, points, pool: np.ndarray, title: str, shaded: bool = True) -> Path:
    """Points (numbered by pick order, legacy points as squares) over a hillshade of the DEM, or over the
    first covariate when there is no DEM; the candidate area outlined."""
    from geotool.io.figures import new_figure, save_figure
    from geotool.soil.terrain import ground_pixel_size

    left, bottom, right, top = grid.bounds
    extent = (left, right, bottom, top)
    fig, ax = new_figure(figsize=(8, 8 * grid.height / max(grid.width, 1) + 0.8))
    if shaded:
        dx, dy = ground_pixel_size(grid)
        ax.imshow(hillshade(background, dx, dy), cmap="gray", extent=extent, interpolation="nearest")
        ax.imshow(background, cmap="terrain", alpha=0.35, extent=extent, interpolation="nearest")
    else:
        ax.imshow(background, cmap="viridis", extent=extent, interpolation="nearest")
    ax.contour(pool.astype(float), levels=[0.5], colors="white", linewidths=0.8,
               extent=(left, right, top, bottom), origin="upper")
    legacy = points["legacy"].to_numpy()
    ax.scatter(points["x"][~legacy], points["y"][~legacy], s=36, c="red", edgecolors="black", label="new points", zorder=3)
    if legacy.any():
        ax.scatter(points["x"][legacy], points["y"][legacy], s=40, marker="s", c="yellow", edgecolors="black",
                   label="existing points", zorder=3)
    for x, y, order in zip(points["x"], points["y"], points["order"]):
        ax.annotate(str(order), (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7, color="white")
    ax.set_title(title)
    ax.set_xlabel(f"x ({grid.crs.to_string()})")
    ax.set_ylabel("y")
    ax.legend(loc="lower right", fontsize=8)
    return save_figure(fig, path)


def plot_evaluation(path: Path, table) -> Path:
    """Mean W/sd and KS (over properties) against k, per method; bands = +-1 sd over repeats."""
    from geotool.io.figures import new_figure, save_figure

    per_design = table.groupby(["method", "k", "repeat"], sort=False).agg(
        w=("wasserstein_per_sd", "mean"), ks=("ks", "mean"), log_det=("log_det", "first")).reset_index()
    fig, axes = new_figure(1, 3, figsize=(15, 4.2))
    for ax, metric, label in zip(axes, ("w", "ks", "log_det"),
                                 ("Wasserstein / sd (lower is better)", "KS statistic (lower is better)",
                                  "D-criterion log det (higher is better)")):
        for method, group in per_design.groupby("method", sort=False):
            stats = group.groupby("k")[metric].agg(["mean", "std"]).reset_index()
            line = ax.plot(stats["k"], stats["mean"], marker="o", label=method)[0]
            if stats["std"].notna().any():
                ax.fill_between(stats["k"], stats["mean"] - stats["std"], stats["mean"] + stats["std"],
                                color=line.get_color(), alpha=0.15)
        ax.set_xlabel("k (points selected)")
        ax.set_title(label)
        ax.grid(alpha=0.3)
    axes[0].legend()
    return save_figure(fig, path)

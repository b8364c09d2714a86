"""PNG previews: design points over a hillshade, and soil-evaluate metrics against N (matplotlib, Agg)."""

from __future__ import annotations

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def hillshade(dem: np.ndarray, valid: np.ndarray, dx: float, dy: float, azimuth: float = 315.0, altitude: float = 45.0) -> np.ndarray:
    """Hillshade 0..1 (light from ``azimuth`` degrees clockwise from north, ``altitude`` above the horizon)."""
    from geotool.soil.terrain import gradient

    gx, gy = gradient(dem, valid, dx, dy)
    slope = np.arctan(np.hypot(gx, gy))
    aspect = np.arctan2(-gx, -gy)
    az, alt = np.radians(azimuth), np.radians(altitude)
    shade = np.sin(alt) * np.cos(slope) + np.cos(alt) * np.sin(slope) * np.cos(az - aspect)
    return np.where(valid, np.clip(shade, 0, 1), np.nan)


def design_figure(cov, gdf, candidates: np.ndarray, title: str):
    """Figure of the points over the DEM hillshade (or the first covariate) with the candidate area."""
    plt = _plt()
    grid = cov.grid
    left, bottom, right, top = grid.bounds
    extent = (left, right, bottom, top)
    fig, ax = plt.subplots(figsize=(8, 8 * grid.height / max(grid.width, 1) + 0.8))
    if cov.dem is not None:
        valid = np.isfinite(cov.dem) & cov.valid
        ax.imshow(hillshade(cov.dem, valid, *cov.pixel_m), cmap="gray", extent=extent, interpolation="nearest")
        ax.imshow(np.where(valid, cov.dem, np.nan), cmap="terrain", alpha=0.35, extent=extent, interpolation="nearest")
    else:
        ax.imshow(np.where(cov.valid, cov.data[0], np.nan), cmap="gray", extent=extent, interpolation="nearest")
    ax.contour(
        np.flipud(candidates.astype(float)), levels=[0.5], colors="yellow", linewidths=0.8,
        extent=extent, origin="lower",
    )
    new = ~gdf["legacy"].to_numpy()
    ax.scatter(gdf["x"][new], gdf["y"][new], s=36, c="red", edgecolors="white", linewidths=0.8, label="new", zorder=3)
    if (~new).any():
        ax.scatter(gdf["x"][~new], gdf["y"][~new], s=44, marker="s", c="blue", edgecolors="white", label="existing", zorder=3)
    for x, y, o in zip(gdf["x"][new], gdf["y"][new], gdf["order"][new]):
        ax.annotate(str(o), (x, y), xytext=(3, 3), textcoords="offset points", fontsize=7, color="black")
    ax.set_title(title)
    ax.set_xlabel(f"x ({grid.crs})")
    ax.set_ylabel("y")
    ax.legend(loc="lower right", fontsize=8)
    return fig


def evaluate_figure(summary, title: str):
    """Mean normalised Wasserstein distance, mean KS and D-criterion against N, one line per method."""
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for method, part in summary.groupby("method", sort=False):
        part = part.sort_values("n")
        for ax, col in zip(axes, ("wasserstein_norm", "ks", "log_det")):
            ax.plot(part["n"], part[col], marker="o", label=method)
            if col + "_std" in part:
                ax.fill_between(part["n"], part[col] - part[col + "_std"], part[col] + part[col + "_std"], alpha=0.15)
    for ax, label in zip(axes, ("mean W1 / std (lower is better)", "mean KS distance (lower is better)", "log det (higher is better)")):
        ax.set_xlabel("N")
        ax.set_title(label, fontsize=10)
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.suptitle(title)
    return fig

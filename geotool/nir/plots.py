"""Figures for NIR runs: validation-window panels and generated-vs-real comparisons."""

from __future__ import annotations

import os

import numpy as np

from geotool.io.figures import new_figure, save_figure, stretch_rgb
from geotool.nir.metrics import ndvi


def window_panel(rgb: np.ndarray, real: np.ndarray, fake: np.ndarray, valid: np.ndarray, path: str | os.PathLike, title: str = "") -> None:
    """Rows of windows: RGB | real NIR | generated NIR | |error| | NDVI real | NDVI generated (unit scale).

    Args:
        rgb: ``(N,3,H,W)``; real, fake: ``(N,H,W)``; valid: ``(N,H,W)`` bool.
    """
    n = rgb.shape[0]
    fig, axes = new_figure(n, 6, figsize=(13, 2.2 * n + 0.4), squeeze=False)
    vmax = float(np.percentile(np.concatenate([real[valid], fake[valid]]), 99)) if valid.any() else 1.0
    cols = ["RGB", "real NIR", "generated NIR", "|error|", "NDVI real", "NDVI generated"]
    for i in range(n):
        m = valid[i]
        panels = [
            (stretch_rgb(rgb[i]), {}),
            (np.where(m, real[i], np.nan), dict(cmap="gray", vmin=0, vmax=vmax)),
            (np.where(m, fake[i], np.nan), dict(cmap="gray", vmin=0, vmax=vmax)),
            (np.where(m, np.abs(fake[i] - real[i]), np.nan), dict(cmap="magma", vmin=0, vmax=max(vmax * 0.3, 1e-3))),
            (np.where(m, ndvi(real[i], rgb[i, 0]), np.nan), dict(cmap="RdYlGn", vmin=-0.5, vmax=0.8)),
            (np.where(m, ndvi(fake[i], rgb[i, 0]), np.nan), dict(cmap="RdYlGn", vmin=-0.5, vmax=0.8)),
        ]
        for j, (img, kw) in enumerate(panels):
            ax = axes[i, j]
            ax.imshow(img, **kw)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(cols[j], fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    save_figure(fig, path)


def _panel_size(rows: int, cols: int, longest: float = 3.5, narrowest: float = 1.6) -> tuple[float, float]:
    """(width, height) in inches of one panel showing ``rows`` x ``cols`` pixels: ``longest`` on the longer
    side, at least ``narrowest`` wide (room for the title) and 0.8 high."""
    scale = longest / max(rows, cols, 1)
    return max(cols * scale, narrowest), max(rows * scale, 0.8)


def comparison_figure(rgb, real, fake, valid, baselines: dict, path: str | os.PathLike) -> None:
    """One row of panels: RGB | real NIR | generated NIR | |error| | NDVI real | NDVI generated | baselines.

    Arrays as :func:`window_panel` (unit scale, ``(3,H,W)`` / ``(H,W)``) for one scene, or a decimated crop of
    it; each panel is sized to the arrays' aspect ratio.
    """
    panels = [("RGB", stretch_rgb(rgb, valid), {})]
    vmax = float(np.percentile(real[valid], 99)) if valid.any() else 1.0
    gray = dict(cmap="gray", vmin=0, vmax=vmax)
    nd = dict(cmap="RdYlGn", vmin=-0.5, vmax=0.8)
    panels += [("real NIR", np.where(valid, real, np.nan), gray), ("generated NIR", np.where(valid, fake, np.nan), gray),
               ("|error| generated", np.where(valid, np.abs(fake - real), np.nan), dict(cmap="magma", vmin=0, vmax=vmax * 0.3)),
               ("NDVI real", np.where(valid, ndvi(real, rgb[0]), np.nan), nd),
               ("NDVI generated", np.where(valid, ndvi(fake, rgb[0]), np.nan), nd)]
    for name, pred in baselines.items():
        panels.append((f"{name} baseline NIR", np.where(valid, pred, np.nan), gray))
    w, h = _panel_size(*real.shape)
    fig, axes = new_figure(1, len(panels), figsize=(w * len(panels), h + 0.3), squeeze=False)
    for ax, (title, img, kw) in zip(axes[0], panels):
        ax.imshow(img, **kw)
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    save_figure(fig, path)

"""PNG previews: validation windows and prediction overlays."""

from __future__ import annotations

import numpy as np

from geotool.io.figures import stretch_rgb


def validation_panel(x, y, pred, valid, ignore_index: int, n_classes: int, path, title: str = "", max_rows: int = 4):
    """Rows of image | label | prediction for a batch of windows (labels' ignore pixels shown grey)."""
    from geotool.io.figures import new_figure, save_figure

    n = min(max_rows, x.shape[0])
    fig, axes = new_figure(n, 3, figsize=(7.5, 2.5 * n), squeeze=False)
    for i in range(n):
        lab = np.ma.masked_equal(y[i], ignore_index)
        pr = np.ma.masked_where(~valid[i].astype(bool), pred[i])
        axes[i, 0].imshow(stretch_rgb(x[i]))
        axes[i, 1].imshow(lab, vmin=0, vmax=n_classes - 1, cmap="viridis", interpolation="nearest")
        axes[i, 2].imshow(pr, vmin=0, vmax=n_classes - 1, cmap="viridis", interpolation="nearest")
        for ax, t in zip(axes[i], ("image", "label", "prediction")):
            ax.set_axis_off()
            if i == 0:
                ax.set_title(t)
    if title:
        fig.suptitle(title, fontsize=9)
    return save_figure(fig, path)


def overlay(image: np.ndarray, classes: np.ndarray, valid: np.ndarray, path, title: str = "", reference=None):
    """Image with predicted classes (and optionally the reference) overlaid, side by side."""
    from geotool.io.figures import new_figure, save_figure

    panels = 2 if reference is None else 3
    fig, axes = new_figure(1, panels, figsize=(4.5 * panels, 4.5), squeeze=False)
    rgb = stretch_rgb(image)
    axes[0, 0].imshow(rgb)
    axes[0, 0].set_title("image")
    axes[0, 1].imshow(rgb)
    axes[0, 1].imshow(np.ma.masked_where((classes == 0) | ~valid, classes), alpha=0.5, cmap="autumn", interpolation="nearest")
    axes[0, 1].set_title("prediction")
    if reference is not None:
        axes[0, 2].imshow(rgb)
        axes[0, 2].imshow(np.ma.masked_where(reference == 0, reference), alpha=0.5, cmap="winter", interpolation="nearest")
        axes[0, 2].set_title("reference")
    for ax in axes[0]:
        ax.set_axis_off()
    if title:
        fig.suptitle(title, fontsize=9)
    return save_figure(fig, path)

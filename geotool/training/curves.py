"""Training-curve PNG from Lightning's CSV log."""

from __future__ import annotations

from pathlib import Path


def plot_training_curves(metrics_csv: str | Path, output: str | Path) -> Path | None:
    """Plot every logged metric per epoch (one panel per metric) into ``output``; None if no CSV."""
    from geotool.io.figures import new_figure, save_figure
    from geotool.io.files import read_table

    metrics_csv = Path(metrics_csv)
    if not metrics_csv.exists():
        return None
    frame = read_table(metrics_csv)
    if "epoch" not in frame:
        return None
    frame = frame.groupby("epoch", as_index=False).mean(numeric_only=True)
    cols = [c for c in frame.columns if c not in ("epoch", "step") and frame[c].notna().any()]
    if not cols:
        return None
    fig, axes = new_figure(1, len(cols), figsize=(3.2 * len(cols), 2.8), squeeze=False)
    for ax, c in zip(axes[0], cols):
        sub = frame.dropna(subset=[c])
        ax.plot(sub["epoch"], sub[c], marker="o")
        ax.set_title(c)
        ax.set_xlabel("epoch")
    return save_figure(fig, output)

"""Training-curve PNG from Lightning's CSV log."""

from __future__ import annotations

from pathlib import Path


def plot_training_curves(metrics_csv: str | Path, output: str | Path) -> Path | None:
    """Plot the logged metrics per epoch into ``output`` (training losses together, one panel per other metric);
    None when there is no CSV or nothing logged. Shared by train-segmentation and train-nir."""
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
    # Training losses share one panel (their relative sizes matter, e.g. a GAN's generator vs discriminator);
    # every validation metric gets its own.
    losses = [c for c in cols if c.startswith("train_")]
    panels = ([losses] if losses else []) + [[c] for c in cols if c not in losses]
    fig, axes = new_figure(1, len(panels), figsize=(3.8 * len(panels), 3.0), squeeze=False)
    for ax, group in zip(axes[0], panels):
        for c in group:
            sub = frame.dropna(subset=[c])
            ax.plot(sub["epoch"], sub[c], marker="o", markersize=3, label=c)
        ax.set_title("training losses" if len(group) > 1 else group[0])
        ax.set_xlabel("epoch")
        if len(group) > 1:
            ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return save_figure(fig, output)

"""Figures: save a matplotlib figure as PNG atomically (temp file in the target folder, then rename)."""

from __future__ import annotations

import os
from pathlib import Path

from geotool.errors import OutputError
from geotool.io.atomic import atomic_path


def save_figure(fig, path: str | os.PathLike, dpi: int = 150) -> Path:
    """Write ``fig`` to ``path`` (format from the extension: .png, .pdf, .svg, .jpg) and close it."""
    import matplotlib.pyplot as plt

    path = Path(path)
    if path.suffix.lower() not in (".png", ".pdf", ".svg", ".jpg", ".jpeg"):
        raise OutputError(f"{path}: unsupported figure extension {path.suffix or '(none)'}; use .png")
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=dpi, bbox_inches="tight")
    finally:
        plt.close(fig)
    return path

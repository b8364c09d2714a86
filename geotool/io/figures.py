"""PNG figures (previews, plots, contact sheets) written atomically (temp file in the target folder, then rename)."""

from __future__ import annotations

import os
from pathlib import Path

from geotool.errors import OutputError
from geotool.io.atomic import atomic_path

FIGURE_SUFFIXES = (".png", ".pdf", ".svg", ".jpg", ".jpeg")


def stretch_rgb(image, valid=None, per_band: bool = False):
    """``(bands, H, W)`` -> ``(H, W, 3)`` display RGB in 0..1 from the first three bands (one band: grey),
    stretched between the 2nd and 98th percentiles of the valid pixels (invalid pixels black).

    ``per_band``: stretch each band on its own (balances colour across sensors) instead of all three together
    (keeps the scene's colour balance).
    """
    import numpy as np

    bands = np.asarray(image[:3] if image.shape[0] >= 3 else np.repeat(image[:1], 3, axis=0), dtype=np.float32)
    valid = np.ones(bands.shape[1:], bool) if valid is None else np.asarray(valid, bool)
    groups = [bands[i : i + 1] for i in range(3)] if per_band else [bands]
    out = []
    for group in groups:
        vals = group[:, valid] if valid.any() else group.ravel()
        lo, hi = np.percentile(vals, [2, 98]) if vals.size else (0.0, 1.0)
        out.append(np.clip((group - lo) / max(hi - lo, 1e-6), 0, 1))
    rgb = np.concatenate(out).transpose(1, 2, 0)
    rgb[~valid] = 0
    return rgb


def save_image(rgb, path: str | os.PathLike, title: str = "") -> Path:
    """Write an ``(H, W, 3)`` image (floats 0..1 or uint8) as a PNG, pixel for pixel, atomically; ``title`` goes
    into the PNG's Title text chunk. The pixels go straight to Pillow's encoder at zlib level 1: no figure, and
    not matplotlib's ``imsave`` (which converts to RGBA first and needs matplotlib imported), because over
    hundreds of small scenes a preview's cost would otherwise outgrow the prediction itself."""
    import numpy as np
    from PIL import Image, PngImagePlugin

    path = Path(path)
    if path.suffix.lower() != ".png":
        raise OutputError(f"{path}: previews are PNG files; use .png")
    if np.asarray(rgb).dtype != np.uint8:
        rgb = (np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8)
    info = None
    if title:
        info = PngImagePlugin.PngInfo()
        info.add_text("Title", title)
    with atomic_path(path) as tmp:
        Image.fromarray(np.ascontiguousarray(rgb), mode="RGB").save(tmp, format="PNG", compress_level=1, pnginfo=info)
    return path


def new_figure(*args, **kwargs):
    """``plt.subplots`` on the non-interactive Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt.subplots(*args, **kwargs)


def save_figure(fig, path: str | os.PathLike, dpi: int = 120) -> Path:
    """Write ``fig`` to ``path`` (format from the extension: .png, .pdf, .svg, .jpg) and close it."""
    import matplotlib.pyplot as plt

    path = Path(path)
    if path.suffix.lower() not in FIGURE_SUFFIXES:
        plt.close(fig)
        raise OutputError(f"{path}: unsupported figure extension {path.suffix or '(none)'}; use .png")
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format=path.suffix.lower().lstrip(".").replace("jpg", "jpeg"))
    finally:
        plt.close(fig)
    return path

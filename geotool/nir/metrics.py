"""Generated-vs-real NIR metrics, all over valid pixels in unit (reflectance-like) scale.

- MAE, RMSE, bias (mean generated - real), Pearson r.
- PSNR with data range 1.0 (unit scale) and SSIM with a uniform 7 x 7 window, data range 1.0,
  K1 = 0.01, K2 = 0.03, averaged over pixels whose whole window is valid.
- SAM: mean spectral angle (degrees) between real and generated RGBN vectors (RGB shared).
- NDVI = (N - R) / (N + R): MAE, and IoU/F1 of the NDVI > 0.3 masks.
- Seam check: MAE on pixels within ``seam_width`` of interior window borders vs all other pixels.

Every metric is accumulated as exact float64 sums (:class:`NIRSums`), so a scene can be fed in strips of
rows; SSIM strips carry a halo of ``SSIM_WINDOW // 2`` rows (:func:`halo_rows`). :func:`nir_metrics` and
:func:`ssim` are the same accumulators fed the whole array once.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

SSIM_WINDOW = 7
SSIM_HALO = SSIM_WINDOW // 2
DATA_RANGE = 1.0
NDVI_THRESHOLD = 0.3


def ndvi(nir: np.ndarray, red: np.ndarray) -> np.ndarray:
    """NDVI of unit-scaled NIR and red (0 where both are 0)."""
    den = nir + red
    return np.where(den > 1e-6, (nir - red) / np.where(den > 1e-6, den, 1), 0.0)


def halo_rows(row_off: int, rows: int, height: int, halo: int = SSIM_HALO) -> tuple[int, int, slice]:
    """Rows ``[start, stop)`` of the strip ``[row_off, row_off + rows)`` widened by ``halo`` rows (clipped to
    ``height``), and the slice of that block holding the strip's own rows."""
    start, stop = max(0, row_off - halo), min(height, row_off + rows + halo)
    return start, stop, slice(row_off - start, row_off - start + rows)


def ssim_map(x: np.ndarray, y: np.ndarray, valid: np.ndarray, window: int = SSIM_WINDOW,
             data_range: float = DATA_RANGE) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel SSIM ``(H, W)`` float64 of a block and where its ``window`` x ``window`` neighbourhood is
    entirely valid (reflect padding for the statistics, invalid outside for the window test).

    Exact for rows at least ``window // 2`` from a block edge that is not a raster edge.
    """
    x = np.where(valid, x, 0).astype(np.float64)
    y = np.where(valid, y, 0).astype(np.float64)
    f = lambda a: ndimage.uniform_filter(a, window, mode="reflect")  # noqa: E731
    mx, my = f(x), f(y)
    sxx, syy, sxy = f(x * x) - mx**2, f(y * y) - my**2, f(x * y) - mx * my
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx**2 + my**2 + c1) * (sxx + syy + c2))
    full = ndimage.minimum_filter(valid.astype(np.uint8), window, mode="constant", cval=0).astype(bool)
    return s, full


class SSIMSums:
    """Mean SSIM accumulated over strips: sums over fully-valid windows, and over valid pixels as the
    fallback when no window is fully valid anywhere (as for a scene smaller than the window)."""

    def __init__(self) -> None:
        self.full_sum, self.full_n, self.valid_sum, self.valid_n = 0.0, 0, 0.0, 0

    def add(self, x: np.ndarray, y: np.ndarray, valid: np.ndarray, keep: slice = slice(None)) -> None:
        """Feed a block ``(rows, W)`` (unit scale) of which only the rows ``keep`` count (the rest is halo)."""
        s, full = (a[keep] for a in ssim_map(x, y, valid))
        self.full_sum += float(s[full].sum())
        self.full_n += int(full.sum())
        self.valid_sum += float(s[valid[keep]].sum())
        self.valid_n += int(valid[keep].sum())

    def result(self) -> float:
        """Mean SSIM (nan without valid pixels)."""
        if self.full_n:
            return self.full_sum / self.full_n
        return self.valid_sum / self.valid_n if self.valid_n else float("nan")


def ssim(x: np.ndarray, y: np.ndarray, valid: np.ndarray) -> float:
    """Mean SSIM of whole ``(H, W)`` arrays over pixels whose ``SSIM_WINDOW`` neighbourhood is entirely valid."""
    acc = SSIMSums()
    acc.add(x, y, valid)
    return acc.result()


def _seam_lines(length: int, window: int, overlap: int, offset: int, width: int) -> np.ndarray:
    """``(length,)`` bool: True within ``width`` of the interior window borders along one axis."""
    from geotool.io.tiling import window_starts

    line = np.zeros(length, bool)
    for s in window_starts(length, window, window - overlap, offset):
        for edge in (s, s + window):
            if 0 < edge < length:
                line[max(0, edge - width):min(length, edge + width)] = True
    return line


def seam_mask(shape: tuple[int, int], window: int, overlap: int, offset: int = 0, width: int = 2,
              rows: tuple[int, int] | None = None) -> np.ndarray:
    """True on pixels within ``width`` of the interior window borders of the tiling lattice.

    ``rows=(start, stop)`` gives only those rows of the scene's mask (the scene is still ``shape``).
    """
    along_rows, along_cols = (_seam_lines(n, window, overlap, offset, width) for n in shape)
    if rows is not None:
        along_rows = along_rows[rows[0]:rows[1]]
    return along_rows[:, None] | along_cols[None, :]


class NIRSums:
    """Float64 sums behind every metric of :func:`nir_metrics` except SSIM, fed strip by strip."""

    KEYS = ("n", "abs", "err", "sq", "x", "y", "xx", "yy", "xy", "angle", "ndvi_abs", "inter", "union", "masks")

    def __init__(self) -> None:
        self.s = dict.fromkeys(self.KEYS, 0.0)
        self.shift: tuple[float, float] | None = None  # subtracted before the Pearson sums (stability)
        self.lo, self.hi = [np.inf, np.inf], [-np.inf, -np.inf]  # (generated, real) ranges: r is nan if one is flat

    def add(self, fake: np.ndarray, real: np.ndarray, rgb: np.ndarray, valid: np.ndarray) -> None:
        """Feed unit-scaled ``fake``/``real`` ``(rows, W)``, ``rgb`` ``(3, rows, W)`` over ``valid``."""
        f, r = fake[valid].astype(np.float64), real[valid].astype(np.float64)
        if not f.size:
            return
        rgb_v = rgb[:, valid].astype(np.float64)
        if self.shift is None:
            self.shift = (float(f.mean()), float(r.mean()))
        err, x, y = f - r, f - self.shift[0], r - self.shift[1]
        shared = (rgb_v**2).sum(0)
        cos = (shared + f * r) / np.maximum(np.sqrt(shared + r**2) * np.sqrt(shared + f**2), 1e-12)
        nd_f, nd_r = ndvi(f, rgb_v[0]), ndvi(r, rgb_v[0])
        m_f, m_r = nd_f > NDVI_THRESHOLD, nd_r > NDVI_THRESHOLD
        sums = {"n": f.size, "abs": np.abs(err).sum(), "err": err.sum(), "sq": (err**2).sum(), "x": x.sum(),
                "y": y.sum(), "xx": (x * x).sum(), "yy": (y * y).sum(), "xy": (x * y).sum(),
                "angle": np.degrees(np.arccos(np.clip(cos, -1, 1))).sum(), "ndvi_abs": np.abs(nd_f - nd_r).sum(),
                "inter": (m_f & m_r).sum(), "union": (m_f | m_r).sum(), "masks": m_f.sum() + m_r.sum()}
        for k, v in sums.items():
            self.s[k] += float(v)
        self.lo = [min(self.lo[0], f.min()), min(self.lo[1], r.min())]
        self.hi = [max(self.hi[0], f.max()), max(self.hi[1], r.max())]

    def _pearson(self) -> float:
        s, n = self.s, self.s["n"]
        if not (self.hi[0] > self.lo[0] and self.hi[1] > self.lo[1]):
            return float("nan")
        cov = s["xy"] - s["x"] * s["y"] / n
        den = np.sqrt((s["xx"] - s["x"] ** 2 / n) * (s["yy"] - s["y"] ** 2 / n))
        return float(cov / den) if den > 0 else float("nan")

    def result(self, ssim_value: float) -> dict[str, float]:
        """The metrics dict of :func:`nir_metrics` (``ssim_value`` from :class:`SSIMSums`)."""
        s, n = self.s, max(self.s["n"], 1)
        mse = s["sq"] / n
        return {
            "mae": s["abs"] / n,
            "rmse": float(np.sqrt(mse)),
            "bias": s["err"] / n,
            "pearson_r": self._pearson(),
            "psnr_db": float(10 * np.log10(DATA_RANGE**2 / mse)) if mse > 0 else float("inf"),
            "ssim": ssim_value,
            "sam_deg": s["angle"] / n,
            "ndvi_mae": s["ndvi_abs"] / n,
            "ndvi_iou": s["inter"] / s["union"] if s["union"] else 1.0,
            "ndvi_f1": 2 * s["inter"] / s["masks"] if s["masks"] else 1.0,
            "n_pixels": int(s["n"]),
        }


class StripMetrics:
    """:func:`nir_metrics` accumulated over strips of rows fed top to bottom with an SSIM halo."""

    def __init__(self) -> None:
        self.sums, self.ssim = NIRSums(), SSIMSums()

    def add(self, fake: np.ndarray, real: np.ndarray, rgb: np.ndarray, valid: np.ndarray, keep: slice = slice(None)) -> None:
        """Feed a block (strip plus halo, see :func:`halo_rows`); only its rows ``keep`` are counted."""
        self.ssim.add(fake, real, valid, keep)
        self.sums.add(fake[keep], real[keep], rgb[:, keep], valid[keep])

    def result(self) -> dict[str, float]:
        """The metrics dict of :func:`nir_metrics`."""
        return self.sums.result(self.ssim.result())


def nir_metrics(fake: np.ndarray, real: np.ndarray, rgb: np.ndarray, valid: np.ndarray) -> dict[str, float]:
    """All metrics for unit-scaled ``fake``/``real`` ``(H,W)`` and ``rgb`` ``(3,H,W)`` over ``valid``."""
    acc = StripMetrics()
    acc.add(fake, real, rgb, valid)
    return acc.result()


METRIC_NOTES = {
    "units": "unit scale (stored value / 255 for uint8, / 10000 for reflectance x 10000, as is for float)",
    "psnr": f"data range {DATA_RANGE}",
    "ssim": f"uniform {SSIM_WINDOW}x{SSIM_WINDOW} window, data range {DATA_RANGE}, K1=0.01, K2=0.03, fully-valid windows",
    "sam": "degrees, over the RGBN vector (RGB from the reference)",
    "ndvi_mask": f"NDVI > {NDVI_THRESHOLD}",
}

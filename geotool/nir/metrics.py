"""Generated-vs-real NIR metrics, all over valid pixels in unit (reflectance-like) scale.

- MAE, RMSE, bias (mean generated - real), Pearson r.
- PSNR with data range 1.0 (unit scale) and SSIM with a uniform 7 x 7 window, data range 1.0,
  K1 = 0.01, K2 = 0.03, averaged over pixels whose whole window is valid.
- SAM: mean spectral angle (degrees) between real and generated RGBN vectors (RGB shared).
- NDVI = (N - R) / (N + R): MAE, and IoU/F1 of the NDVI > 0.3 masks.
- Seam check: MAE on pixels within ``seam_width`` of interior window borders vs all other pixels.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

SSIM_WINDOW = 7
DATA_RANGE = 1.0
NDVI_THRESHOLD = 0.3


def ndvi(nir: np.ndarray, red: np.ndarray) -> np.ndarray:
    """NDVI of unit-scaled NIR and red (0 where both are 0)."""
    den = nir + red
    return np.where(den > 1e-6, (nir - red) / np.where(den > 1e-6, den, 1), 0.0)


def ssim(x: np.ndarray, y: np.ndarray, valid: np.ndarray, window: int = SSIM_WINDOW, data_range: float = DATA_RANGE) -> float:
    """Mean SSIM over pixels whose ``window`` x ``window`` neighbourhood is entirely valid."""
    x = np.where(valid, x, 0).astype(np.float64)
    y = np.where(valid, y, 0).astype(np.float64)
    f = lambda a: ndimage.uniform_filter(a, window, mode="reflect")  # noqa: E731
    mx, my = f(x), f(y)
    sxx, syy, sxy = f(x * x) - mx**2, f(y * y) - my**2, f(x * y) - mx * my
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx**2 + my**2 + c1) * (sxx + syy + c2))
    full = ndimage.minimum_filter(valid.astype(np.uint8), window, mode="constant", cval=0).astype(bool)
    if not full.any():
        full = valid
    return float(s[full].mean())


def seam_mask(shape: tuple[int, int], window: int, overlap: int, offset: int = 0, width: int = 2) -> np.ndarray:
    """True on pixels within ``width`` of the interior window borders of the tiling lattice."""
    from geotool.io.tiling import window_starts

    mask = np.zeros(shape, bool)
    stride = window - overlap
    for axis, length in enumerate(shape):
        for s in window_starts(length, window, stride, offset):
            for edge in (s, s + window):
                if 0 < edge < length:
                    lo, hi = max(0, edge - width), min(length, edge + width)
                    if axis == 0:
                        mask[lo:hi, :] = True
                    else:
                        mask[:, lo:hi] = True
    return mask


def nir_metrics(fake: np.ndarray, real: np.ndarray, rgb: np.ndarray, valid: np.ndarray) -> dict[str, float]:
    """All metrics for unit-scaled ``fake``/``real`` ``(H,W)`` and ``rgb`` ``(3,H,W)`` over ``valid``."""
    f, r = fake[valid].astype(np.float64), real[valid].astype(np.float64)
    err = f - r
    mse = float(np.mean(err**2))
    pearson = float(np.corrcoef(f, r)[0, 1]) if f.std() > 0 and r.std() > 0 else float("nan")
    rgb_v = rgb[:, valid].astype(np.float64)
    v_real = np.vstack([rgb_v, r[None]])
    v_fake = np.vstack([rgb_v, f[None]])
    cos = (v_real * v_fake).sum(0) / np.maximum(np.linalg.norm(v_real, axis=0) * np.linalg.norm(v_fake, axis=0), 1e-12)
    sam = float(np.degrees(np.arccos(np.clip(cos, -1, 1))).mean())
    nd_f, nd_r = ndvi(f, rgb_v[0]), ndvi(r, rgb_v[0])
    m_f, m_r = nd_f > NDVI_THRESHOLD, nd_r > NDVI_THRESHOLD
    inter, union = float((m_f & m_r).sum()), float((m_f | m_r).sum())
    denom = float(m_f.sum() + m_r.sum())
    return {
        "mae": float(np.abs(err).mean()),
        "rmse": float(np.sqrt(mse)),
        "bias": float(err.mean()),
        "pearson_r": pearson,
        "psnr_db": float(10 * np.log10(DATA_RANGE**2 / mse)) if mse > 0 else float("inf"),
        "ssim": ssim(fake, real, valid),
        "sam_deg": sam,
        "ndvi_mae": float(np.abs(nd_f - nd_r).mean()),
        "ndvi_iou": inter / union if union else 1.0,
        "ndvi_f1": 2 * inter / denom if denom else 1.0,
        "n_pixels": int(valid.sum()),
    }


METRIC_NOTES = {
    "units": "unit scale (stored value / 255 for uint8, / 10000 for reflectance x 10000, as is for float)",
    "psnr": f"data range {DATA_RANGE}",
    "ssim": f"uniform {SSIM_WINDOW}x{SSIM_WINDOW} window, data range {DATA_RANGE}, K1=0.01, K2=0.03, fully-valid windows",
    "sam": "degrees, over the RGBN vector (RGB from the reference)",
    "ndvi_mask": f"NDVI > {NDVI_THRESHOLD}",
}

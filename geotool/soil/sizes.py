"""Sample-size advice (``soil-evaluate --sizes 10:100:10``): how a design's covariate representativeness
and D-criterion improve with N, on the candidate grid itself (no measured data needed).

For every N the design is soil-sample's default (kernel maxvol, seed ``seed``) and, for reference, the median
of ``random`` simple random designs. Per covariate, the design's cells are compared with all candidate
cells: 1-D Wasserstein distance / sd, Kolmogorov-Smirnov statistic, and the Jensen-Shannon divergence of
25-bin equal-width histograms (base 2, 0..1; as in Saurette et al. 2024); each averaged over covariates.
The D-criterion is log det(X_S^T X_S) of the standardised linear covariates with an intercept.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geotool.errors import ConfigError

BINS = 25


def parse_sizes(text: str) -> list[int]:
    """``"10:100:10"`` (start:stop:step, stop included) or ``"10,20,50"`` into sorted sizes >= 2."""
    try:
        if ":" in text:
            parts = [int(p) for p in text.split(":")]
            if len(parts) != 3 or parts[2] <= 0:
                raise ValueError
            sizes = list(range(parts[0], parts[1] + 1, parts[2]))
        else:
            sizes = [int(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise ConfigError(f"--sizes takes start:stop:step like 10:100:10 or a list like 10,20,50, not {text!r}") from None
    if not sizes or min(sizes) < 2:
        raise ConfigError(f"--sizes {text}: every size must be at least 2")
    return sorted(set(sizes))


@dataclass
class Representativeness:
    """Population summaries the per-design metrics are computed against (covariates standardised)."""

    X: np.ndarray  # (cells, covariates), standardised, float32

    def __post_init__(self) -> None:
        self.sorted = np.sort(self.X, axis=0)
        lo, hi = self.sorted[0], self.sorted[-1]
        self.edges = [np.linspace(lo[j], hi[j], BINS + 1) for j in range(self.X.shape[1])]
        self.pop_hist = np.array([np.histogram(self.X[:, j], bins=e)[0] for j, e in enumerate(self.edges)], dtype=np.float64)
        self.pop_hist /= self.pop_hist.sum(axis=1, keepdims=True)
        cells = len(self.X)
        self._u = (np.arange(cells) + 0.5) / cells

    def scores(self, rows: np.ndarray) -> tuple[float, float, float]:
        """Mean over covariates of (Wasserstein / sd, KS, Jensen-Shannon divergence) of ``rows``."""
        return self.score_values(self.X[rows])

    def score_values(self, values: np.ndarray) -> tuple[float, float, float]:
        """:meth:`scores` of a design given by its ``(n, covariates)`` standardised values (cells that need
        not be among the population rows, e.g. when the population is a sample of a large field)."""
        n = len(values)
        sample = np.sort(np.asarray(values, dtype=np.float64), axis=0)
        idx = np.minimum((self._u * n).astype(np.int64), n - 1)
        w = float(np.mean(np.abs(sample[idx] - self.sorted)))  # exact W1 vs the population's quantile function
        ks, js = [], []
        cells = len(self.X)
        for j in range(self.X.shape[1]):
            col = self.sorted[:, j]
            s = sample[:, j]
            # ECDF gap at every sample value (both sides of each jump) — where KS's supremum is reached
            pop_lo = np.searchsorted(col, s, side="left") / cells
            pop_hi = np.searchsorted(col, s, side="right") / cells
            k = np.arange(n)
            ks.append(float(max(np.max(np.abs((k + 1) / n - pop_hi)), np.max(np.abs(k / n - pop_lo)))))
            edges = self.edges[j]
            # a design cell beyond the population's range (a legacy point, or a sampled population) counts in
            # the end bin instead of vanishing from the histogram
            h = np.histogram(np.clip(s, edges[0], edges[-1]), bins=edges)[0].astype(np.float64)
            h /= h.sum()
            js.append(_jensen_shannon(h, self.pop_hist[j]))
        return w, float(np.mean(ks)), float(np.mean(js))


def design_representativeness(X: np.ndarray, rows: np.ndarray, allowed: np.ndarray, seed: int = 0, random: int = 20,
                              max_cells: int = 1_000_000) -> dict:
    """How well a design's covariates represent the candidate cells it was drawn from, next to random designs.

    Args:
        X: ``(cells, covariates)`` standardised covariates; ``rows``: the design; ``allowed``: the cells a new
            point could take (the population).
        max_cells: above it the population is a seeded uniform sample of this many cells (bounded memory).

    Returns:
        ``wasserstein_per_sd``, ``ks``, ``jsd`` of the design (means over covariates, lower is better), the
        same as the median of ``random`` simple random designs of the same size, and the cells compared.
    """
    from geotool.soil.design import candidate_pool

    population = candidate_pool(allowed, np.empty(0, np.int64), max_cells, seed)
    rng = np.random.default_rng(seed)
    rep = Representativeness(np.asarray(X[population], dtype=np.float32))
    design = rep.score_values(X[rows])
    n = min(len(rows), len(population))
    rand = np.median([rep.scores(rng.choice(len(population), n, replace=False)) for _ in range(random)], axis=0)
    names = ("wasserstein_per_sd", "ks", "jsd")
    return {**dict(zip(names, map(float, design))), "random_median": dict(zip(names, map(float, rand))),
            "random_designs": random, "cells_compared": int(len(population))}


def _jensen_shannon(p: np.ndarray, q: np.ndarray) -> float:
    m = 0.5 * (p + q)

    def kl(a: np.ndarray) -> float:
        nz = a > 0
        return float(np.sum(a[nz] * np.log2(a[nz] / m[nz])))

    return 0.5 * kl(p) + 0.5 * kl(q)


def size_curve(X: np.ndarray, sizes: list[int], seed: int = 0, random: int = 20, feature_memory_mb: float = 256.0):
    """DataFrame, one row per (design, N): W/sd, KS, JSD and log det, for the default design and the median
    of ``random`` random designs."""
    import pandas as pd

    from geotool.soil.design import kernel_maxvol
    from geotool.soil.maxvol import design_log_det

    cells = len(X)
    too_big = [n for n in sizes if n > cells]
    if too_big:
        raise ConfigError(f"--sizes {too_big[0]} is more than the {cells} candidate cells")
    rep = Representativeness(np.asarray(X, dtype=np.float32))
    A = np.column_stack([np.ones(cells, np.float32), rep.X])
    rng = np.random.default_rng(seed)
    records = []
    for n in sizes:
        rows = kernel_maxvol(rep.X, n, seed=seed, feature_memory_mb=feature_memory_mb)[0]
        records.append(("maxvol (default)", n, *rep.scores(rows), design_log_det(A, rows)))
        rand = [(*rep.scores(r), design_log_det(A, r)) for r in (rng.choice(cells, n, replace=False) for _ in range(random))]
        records.append((f"random (median of {random})", n, *np.median(np.array(rand), axis=0)))
    return pd.DataFrame.from_records(records, columns=["design", "n", "wasserstein_per_sd", "ks", "jsd", "log_det"])


def plot_sizes(path, table):
    """Four panels (W/sd, KS, JSD, log det) against N, one line per design."""
    from geotool.io.figures import new_figure, save_figure

    fig, axes = new_figure(1, 4, figsize=(18, 4.2))
    for ax, metric, label in zip(axes, ("wasserstein_per_sd", "ks", "jsd", "log_det"),
                                 ("Wasserstein / sd (lower is better)", "KS statistic (lower is better)",
                                  "Jensen-Shannon divergence (lower is better)", "D-criterion log det (higher is better)")):
        for design, group in table.groupby("design", sort=False):
            ax.plot(group["n"], group[metric], marker="o", label=design)
        ax.set_xlabel("N (points)")
        ax.set_title(label)
        ax.grid(alpha=0.3)
    axes[0].legend()
    return save_figure(fig, path)


from pathlib import Path  # noqa: E402
from typing import Optional  # noqa: E402

from pydantic import Field, field_validator  # noqa: E402

from geotool.config import GeotoolConfig  # noqa: E402


class SoilSizesConfig(GeotoolConfig):
    """Settings of ``geotool soil-evaluate --sizes``."""

    covariates: list[Path] = Field(..., min_length=1, description="Covariate rasters on one grid (the candidate cells).")
    sizes: list[int] = Field(..., min_length=1, description="Sample sizes N to evaluate.")
    output: Path = Field(..., description="CSV table; the PNG curve goes beside it.")
    random: int = Field(20, ge=1, description="Random designs per N for the reference median.")
    seed: int = Field(0, description="Seed of the default design's landmarks and of the random designs.")
    plot: Optional[Path] = Field(None, description="PNG curve (default: output with .png).")

    @field_validator("output")
    @classmethod
    def _csv(cls, value: Path) -> Path:
        if value.suffix.lower() != ".csv":
            raise ValueError(f"{value}: the size table is a CSV; use a .csv file name")
        return value


def run_soil_sizes(cfg: SoilSizesConfig):
    """Read the covariates, compute :func:`size_curve`, write the CSV, the PNG and the sidecar."""
    from geotool.config import write_sidecar
    from geotool.io.files import write_table
    from geotool.io.raster import RasterSource, require_valid_pixels
    from geotool.soil.features import candidate_cells, design_matrix
    from geotool.soil.terrain import ground_pixel_size

    with RasterSource(cfg.covariates) as src:
        data, valid = src.read(dtype=np.float32)
        names = list(src.band_names)
        grid = src.grid
    require_valid_pixels(valid, " + ".join(map(str, cfg.covariates)))
    data[:, ~valid] = np.nan
    cand = candidate_cells(data, valid, names, ground_pixel_size(grid))
    del data
    A, report, _ = design_matrix(cand.values, cand.names)
    table = size_curve(A[:, 1:], cfg.sizes, seed=cfg.seed, random=cfg.random)
    plot_path = cfg.plot or cfg.output.with_suffix(".png")
    plot_sizes(plot_path, table)  # the figure first: if it fails, no table claims a finished run
    write_table(cfg.output, table)
    write_sidecar(cfg.output, "soil-evaluate", cfg, inputs=list(cfg.covariates), seed=cfg.seed,
                  results={"n_candidates": int(len(cand.rows)), "covariates": report.used, "plot": str(plot_path),
                           "dropped_columns": report.warnings()})
    return table

"""Design quality on the Kshen field: which maxvol features make the best default, and how maxvol
compares with cLHS and random sampling on the paper's 51 measured points.

Part 1 (feature choice). Candidates: the cells of the Kshen field valid in every layer. Features:
elevation plus slope, aspect (sin, cos), curvature and TWI derived from the DEM. For N = 10..50 and each
feature variant (kernel = soil-sample's default design, geotool.soil.design.kernel_maxvol; the paper's
linear, quadratic, cubic; linear + coordinates, quadratic + coordinates), the maxvol
design is scored by
  (a) representativeness: mean over the covariates of the 1-D Wasserstein distance between the N cells
      and all candidate cells, divided by the covariate's standard deviation (lower is better);
  (b) prediction: a ridge regression fitted on the N cells predicts NDVI (left out of the features)
      at every candidate cell from the linear covariates; RMSE (lower is better).
Each score is reported as the design's percentile among 200 random designs of the same N (the share
of random designs that do worse; 100 = better than all, 50 = the random median). cLHS is shown too.

Part 2 (the paper's evaluation). soil-evaluate on kshen_data.csv with covariates dem, slope, aspect and
wetnessindex sampled at the points: the paper's linear maxvol vs cLHS vs random, k = 10, 15, 20, 25, 30, 100
repeats; and soil-evaluate's default maxvol (soil-sample's kernel design) on the same points.

Usage: python bench/bench_soil_design.py [--random 200] [--repeats 100]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from geotool.io.raster import read_stack  # noqa: E402
from geotool.soil.baselines import clhs_design  # noqa: E402
from geotool.soil.design import kernel_maxvol  # noqa: E402
from geotool.soil.features import design_matrix  # noqa: E402
from geotool.soil.maxvol import maxvol_select  # noqa: E402
from geotool.soil.terrain import ground_pixel_size, terrain_layers  # noqa: E402

VARIANTS = [("kernel", False), ("linear", False), ("quadratic", False), ("cubic", False), ("linear", True),
            ("quadratic", True)]


def load_field(soil: Path):
    dem = read_stack(soil / "dem.tif", dtype="float64")
    ndvi = read_stack([soil / "dem.tif", soil / "ndvi.tif"], resample="bilinear", dtype="float64")
    z = np.where(dem.valid, dem.data[0], np.nan)
    layers = {"elevation": z, **terrain_layers(z, dem.grid, ["slope", "aspect", "curvature", "twi"])}
    target = np.where(ndvi.valid, ndvi.data[1], np.nan)
    stack = np.stack(list(layers.values()))
    ok = np.all(np.isfinite(stack), axis=0) & np.isfinite(target)
    rows, cols = np.nonzero(ok)
    dx, dy = ground_pixel_size(dem.grid)
    coords = np.column_stack([cols * dx, -rows * dy])
    return stack[:, rows, cols].T, list(layers), target[rows, cols], coords


def scores(values: np.ndarray, sd: np.ndarray, sorted_cols: list[np.ndarray], X_lin: np.ndarray, target: np.ndarray,
           subset: np.ndarray) -> tuple[float, float]:
    from scipy.stats import wasserstein_distance
    from sklearn.linear_model import Ridge

    w = np.mean([wasserstein_distance(values[subset, j], sorted_cols[j]) / sd[j] for j in range(values.shape[1])])
    model = Ridge(alpha=1.0).fit(X_lin[subset], target[subset])
    rmse = float(np.sqrt(np.mean((model.predict(X_lin) - target) ** 2)))
    return float(w), rmse


def percentile(value: float, randoms: np.ndarray) -> float:
    """Share (%) of random designs with a worse (higher) score."""
    return float(100.0 * np.mean(randoms > value))


def part1(soil: Path, n_random: int) -> None:
    values, names, target, coords = load_field(soil)
    cells = len(values)
    sd = values.std(axis=0)
    sorted_cols = [np.sort(values[:, j]) for j in range(values.shape[1])]
    X_lin = design_matrix(values, names, "linear")[0][:, 1:]
    rng = np.random.default_rng(0)
    print(f"Kshen field: {cells} candidate cells, covariates {', '.join(names)}; NDVI left out; "
          f"{n_random} random designs per N")
    header = "| N | " + " | ".join(f"{e}{' + xy' if c else ''}" for e, c in VARIANTS) + " | cLHS | random median |"
    rows_w, rows_p = [], []
    for n in (10, 20, 30, 40, 50):
        rand = np.array([scores(values, sd, sorted_cols, X_lin, target, rng.choice(cells, n, replace=False))
                         for _ in range(n_random)])
        cells_w, cells_p = [], []
        for expansion, with_xy in VARIANTS:
            if expansion == "kernel":  # soil-sample's default design, seed 0
                chosen = kernel_maxvol(X_lin, n, seed=0)[0]
            else:
                A = design_matrix(values, names, expansion, coords=coords if with_xy else None)[0]
                chosen = maxvol_select(A, n).rows
            w, p = scores(values, sd, sorted_cols, X_lin, target, chosen)
            cells_w.append(f"{w:.3f} ({percentile(w, rand[:, 0]):.0f}%)")
            cells_p.append(f"{p:.4f} ({percentile(p, rand[:, 1]):.0f}%)")
        cl = clhs_design(X_lin, n, np.random.default_rng(n), iterations=3000)
        w, p = scores(values, sd, sorted_cols, X_lin, target, cl)
        cells_w.append(f"{w:.3f} ({percentile(w, rand[:, 0]):.0f}%)")
        cells_p.append(f"{p:.4f} ({percentile(p, rand[:, 1]):.0f}%)")
        rows_w.append(f"| {n} | " + " | ".join(cells_w) + f" | {np.median(rand[:, 0]):.3f} |")
        rows_p.append(f"| {n} | " + " | ".join(cells_p) + f" | {np.median(rand[:, 1]):.4f} |")
    print("\n(a) mean Wasserstein / sd over the covariates (percentile among random designs; higher % is better)")
    print(header)
    print("|" + "---|" * (len(VARIANTS) + 3))
    print("\n".join(rows_w))
    print("\n(b) NDVI RMSE of a ridge model fitted on the N cells (percentile among random designs)")
    print(header)
    print("|" + "---|" * (len(VARIANTS) + 3))
    print("\n".join(rows_p))


def part2(soil: Path, repeats: int) -> None:
    import pandas as pd

    from geotool.soil.evaluate import SoilEvaluateConfig, run_soil_evaluate

    runs = [(" (paper: linear)", dict(methods=["maxvol", "clhs", "random"], features="linear")),
            (" (default: kernel)", dict(methods=["maxvol"]))]
    tables = []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for i, (label, opts) in enumerate(runs):
            cfg = SoilEvaluateConfig(
                measured=soil / "kshen_data.csv", output=Path(tmp) / f"eval{i}.csv", x_column="LON", y_column="LAT",
                crs="EPSG:32637", covariates=[soil / "dem.tif", soil / "slope.tif", soil / "aspect.tif", soil / "wetnessindex.tif"],
                k=[10, 15, 20, 25, 30], repeats=repeats, **opts,
            )
            table = run_soil_evaluate(cfg)
            table["method"] = [m + label if m == "maxvol" else m for m in table["method"]]
            tables.append(table)
    elapsed = time.perf_counter() - t0
    summary = pd.concat(tables, ignore_index=True)
    print(f"\nKshen measured points (51), covariates dem/slope/aspect/wetnessindex at the points; {repeats} repeats "
          f"of cLHS and random ({elapsed:.0f} s). Mean over the 10 soil properties; lower W/sd and KS are better.")
    print("| method | k | W/sd mean | W/sd sd | KS mean | KS sd | log det |")
    print("|---|---|---|---|---|---|---|")
    for row in summary.itertuples(index=False):
        sd_w = "-" if row.w_sd_std != row.w_sd_std else f"{row.w_sd_std:.3f}"
        sd_k = "-" if row.ks_std != row.ks_std else f"{row.ks_std:.3f}"
        print(f"| {row.method} | {row.k} | {row.w_sd_mean:.3f} | {sd_w} | {row.ks_mean:.3f} | {sd_k} | {row.log_det:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--soil", type=Path, default=ROOT / "data_samples" / "soil")
    parser.add_argument("--random", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=100)
    args = parser.parse_args()
    part1(args.soil, args.random)
    part2(args.soil, args.repeats)


if __name__ == "__main__":
    main()

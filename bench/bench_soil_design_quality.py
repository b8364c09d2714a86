"""Which features should maxvol use by default? A measured comparison on the Kshen field.

Candidates: every cell of the Kshen field valid in the DEM, its terrain layers and NDVI. Design
features: elevation, slope, aspect (sin, cos), curvature and TWI derived from the DEM, standardised, under
several expansions. For N = 10..50 each maxvol design is scored by

(a) representation: mean over the 6 covariates of the 1-D Wasserstein distance between the N cells'
    (standardised) values and all candidate cells' values (lower is better);
(b) prediction: a ridge regression (intercept + the 6 linear covariates, lambda = 1) fitted on the N cells
    predicts NDVI, a layer left out of the features, on every candidate cell; RMSE (lower is better);

each reported as the design's percentile among ``--random`` simple random designs of the same N
(100 = better than every random design, 50 = the random median). One cLHS and one k-means design per N
are scored the same way for context.

    python bench/bench_soil_design_quality.py [--data data_samples/soil] [--random 200] [--extra-seeds 1,2,3]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from scipy.stats import wasserstein_distance

from geotool.io.raster import read_stack
from geotool.soil.baselines import clhs_design, kmeans_design
from geotool.soil.features import FeatureSpace
from geotool.soil.geometry import ground_xy, pixel_size_m
from geotool.soil.maxvol import maxvol_select
from geotool.soil.terrain import terrain_layers

OPTIONS = {
    "linear": ("linear", False),
    "quadratic": ("quadratic", False),
    "cubic": ("cubic", False),
    "linear+coords": ("linear", True),
    "quadratic+coords": ("quadratic", True),
    "kernel": ("kernel", False),
    "kernel+coords": ("kernel", True),
}


def load(data: Path):
    dem = read_stack([data / "dem.tif"], dtype="float64")
    both = read_stack([data / "dem.tif", data / "ndvi.tif"], resample="bilinear", dtype="float64")
    dx, dy = pixel_size_m(dem.grid)
    layers = {"elevation": dem.data[0], **terrain_layers(dem.data[0], dem.valid, dx, dy)}
    valid = dem.valid & both.valid
    for arr in layers.values():
        valid &= np.isfinite(arr)
    rows, cols = np.nonzero(valid)
    X = np.column_stack([layers[k][rows, cols] for k in layers])
    ndvi = both.data[1][rows, cols]
    x, y = dem.grid.xy(rows, cols)
    xy = np.column_stack(ground_xy(dem.grid, x, y))
    return X, list(layers), ndvi, xy


class Scorer:
    def __init__(self, X: np.ndarray, target: np.ndarray, lam: float = 1.0) -> None:
        self.Z = (X - X.mean(0)) / X.std(0)
        self.target = target
        self.lam = lam
        self.design = np.hstack([np.ones((len(X), 1)), self.Z])

    def representation(self, idx: np.ndarray) -> float:
        return float(np.mean([wasserstein_distance(self.Z[idx, j], self.Z[:, j]) for j in range(self.Z.shape[1])]))

    def prediction(self, idx: np.ndarray) -> float:
        F = self.design[idx]
        pen = self.lam * np.eye(F.shape[1])
        pen[0, 0] = 0.0
        beta = np.linalg.solve(F.T @ F + pen, F.T @ self.target[idx])
        return float(np.sqrt(np.mean((self.design @ beta - self.target) ** 2)))


def percentile(value: float, random_values: np.ndarray) -> float:
    """Share (%) of random designs that are worse (higher metric); ties count half."""
    return float(100 * (np.mean(random_values > value) + 0.5 * np.mean(random_values == value)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parent.parent / "data_samples" / "soil")
    ap.add_argument("--random", type=int, default=200)
    ap.add_argument("--sizes", default="10,20,30,40,50")
    ap.add_argument("--clhs-iterations", type=int, default=5000)
    ap.add_argument("--extra-seeds", default="", help="more landmark seeds for kernel+coords, e.g. 1,2,3")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    X, names, ndvi, xy = load(args.data)
    sc = Scorer(X, ndvi)
    print(f"Kshen field: {len(X)} candidate cells, covariates {', '.join(names)}; left-out layer NDVI")
    rng = np.random.default_rng(0)
    rows = []
    for n in sizes:
        t = time.perf_counter()
        rand = [rng.choice(len(X), n, replace=False) for _ in range(args.random)]
        rep_r = np.array([sc.representation(i) for i in rand])
        pred_r = np.array([sc.prediction(i) for i in rand])
        print(f"N={n}: random median W1 {np.median(rep_r):.4f}, RMSE {np.median(pred_r):.4f} ({args.random} designs)")
        designs = {}
        for label, (expansion, coords) in OPTIONS.items():
            space = FeatureSpace.fit(X, names, expansion, xy if coords else None)
            A = space.transform(X, xy if coords else None)
            designs[f"maxvol {label} ({A.shape[1]} f.)"] = maxvol_select(A, n, xy).indices
        for seed in [int(v) for v in args.extra_seeds.split(",") if v.strip()]:
            space = FeatureSpace.fit(X, names, "kernel", xy, seed=seed)
            designs[f"maxvol kernel+coords, seed {seed}"] = maxvol_select(space.transform(X, xy), n, xy).indices
        Z = sc.Z.astype(np.float32)
        designs["clhs (seed 0)"] = clhs_design(Z, n, xy, 0.0, None, None, 0, args.clhs_iterations)
        designs["kmeans (seed 0)"] = kmeans_design(Z, n, xy, 0.0, None, 0)
        for label, idx in designs.items():
            rep, pred = sc.representation(idx), sc.prediction(idx)
            rows.append((label, n, rep, percentile(rep, rep_r), pred, percentile(pred, pred_r)))
            print(f"  {label:<32} W1 {rep:.4f} ({rows[-1][3]:5.1f} pct)  RMSE {pred:.4f} ({rows[-1][5]:5.1f} pct)")
        print(f"  ({time.perf_counter() - t:.1f} s)")
    maxvol_labels = [lab for lab in dict.fromkeys(r[0] for r in rows) if lab.startswith("maxvol") and "seed" not in lab]
    print("\nMaxvol feature options ranked on the raw metrics (1 = best of the options) over every N and both criteria:")
    ranks = {lab: [] for lab in maxvol_labels}
    for n in sizes:
        for col in (2, 4):
            vals = {r[0]: r[col] for r in rows if r[1] == n and r[0] in ranks}
            for pos, lab in enumerate(sorted(vals, key=vals.get), start=1):
                ranks[lab].append(pos)
    for lab in sorted(ranks, key=lambda k: np.mean(ranks[k])):
        print(f"  {lab:<32} mean rank {np.mean(ranks[lab]):.1f}")
    print("\nSummary: percentile among random designs (representation / prediction), per N")
    labels = list(dict.fromkeys(r[0] for r in rows))
    print(f"| design | " + " | ".join(f"N={n}" for n in sizes) + " | mean |")
    print("|---|" + "---|" * (len(sizes) + 1))
    for label in labels:
        cells = [r for r in rows if r[0] == label]
        mean = np.mean([(r[3] + r[5]) / 2 for r in cells])
        print(f"| {label} | " + " | ".join(f"{r[3]:.0f} / {r[5]:.0f}" for r in cells) + f" | {mean:.0f} |")


if __name__ == "__main__":
    main()

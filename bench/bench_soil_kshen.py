"""Kshen field: the paper's comparison (maxvol vs cLHS vs random on the 51 measured points) and the
run time of the whole ``soil-sample`` pipeline on the 301 x 194 field after imports.

Part 1 runs ``soil-evaluate``'s pipeline: features = elevation and terrain (slope, aspect sin/cos,
curvature, TWI) from the DEM sampled at the 51 points (their CSV columns LAT/LON are UTM 37N
northing/easting, EPSG:32637); for N = 10..30 maxvol picks N points once, cLHS and random ``--repeats``
times; per soil property the 1-D Wasserstein distance (divided by the property's std) and the KS
statistic between the subset and all 51 points, averaged over the properties; log det of the design's
linear features.

Part 2 times ``run_soil_sample`` (maxvol, N = 30) on the field against the same pipeline with
``--method random`` measured in the same run.

    python bench/bench_soil_kshen.py [--data data_samples/soil] [--repeats 100]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from geotool.soil.config import SoilEvaluateConfig, SoilSampleConfig
from geotool.soil.design import run_soil_sample
from geotool.soil.evaluate import format_summary, run_soil_evaluate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parent.parent / "data_samples" / "soil")
    ap.add_argument("--repeats", type=int, default=100)
    ap.add_argument("--clhs-iterations", type=int, default=1000)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        timings = {}
        for method in ("random", "maxvol", "random", "maxvol"):  # first pair warms caches
            cfg = SoilSampleConfig(dem=args.data / "dem.tif", n_points=30, output=Path(tmp) / f"{method}.gpkg", method=method)
            t = time.perf_counter()
            run_soil_sample(cfg)
            timings[method] = time.perf_counter() - t
        print(f"soil-sample on the {args.data.name} field (301x194, N=30), after imports: maxvol {timings['maxvol']:.2f} s, "
              f"random {timings['random']:.2f} s (ratio {timings['maxvol'] / timings['random']:.2f})")

    t = time.perf_counter()
    cfg = SoilEvaluateConfig(
        measured=args.data / "kshen_data.csv", dem=args.data / "dem.tif", x_column="LON", y_column="LAT",
        crs="EPSG:32637", methods=["maxvol", "clhs", "random"], sizes=[10, 15, 20, 25, 30],
        repeats=args.repeats, clhs_iterations=args.clhs_iterations,
    )
    res = run_soil_evaluate(cfg)
    print(f"\nKshen, 51 measured points, {len(set(res.table['property']))} properties, {args.repeats} repeats "
          f"of clhs/random ({time.perf_counter() - t:.0f} s)")
    print(format_summary(res.summary))
    s = res.summary
    print("\n| N | maxvol W1/std | cLHS W1/std (mean +- sd) | random W1/std | maxvol KS | cLHS KS | random KS | maxvol/random W1 |")
    print("|---|---|---|---|---|---|---|---|")
    for n in cfg.sizes:
        row = {m: s[(s["method"] == m) & (s["n"] == n)].iloc[0] for m in cfg.methods}
        print(f"| {n} | {row['maxvol'].wasserstein_norm:.3f} | {row['clhs'].wasserstein_norm:.3f} +- {row['clhs'].wasserstein_norm_std:.3f} "
              f"| {row['random'].wasserstein_norm:.3f} +- {row['random'].wasserstein_norm_std:.3f} | {row['maxvol'].ks:.3f} "
              f"| {row['clhs'].ks:.3f} | {row['random'].ks:.3f} | {row['maxvol'].wasserstein_norm / row['random'].wasserstein_norm:.2f} |")
    # share of random designs the maxvol design beats, per N (W1 averaged over properties)
    t2 = res.table
    print("\nper property, N=20 (W1, not normalised): " + ", ".join(
        f"{p}: maxvol {t2[(t2.method == 'maxvol') & (t2.n == 20) & (t2.property == p)].wasserstein.iloc[0]:.2f} / "
        f"random {t2[(t2.method == 'random') & (t2.n == 20) & (t2.property == p)].wasserstein.iloc[0]:.2f}"
        for p in list(dict.fromkeys(t2.property))[:4]))


if __name__ == "__main__":
    main()

"""Training setup at scale: N tiles + one large label GeoPackage (issue #14).

Builds (once, in --data) 200 uint8 RGB tiles of 512 x 512 (0.5 m, UTM 33N, a 20 x 10 mosaic) and one
GeoPackage of 73,227 building-like squares over the mosaic, then measures, each in a fresh process:

- setup: ``build_training_data`` (scenes, labels, split, normalisation, datasets) for 1 tile and for all
  tiles: seconds and peak RSS; target (#14) at most 3x the 1-tile seconds and 2 GB;
- dataset throughput: training windows per second from the dataset vs a plain rasterio random-window read
  plus rasterize of the same windows (the baseline, measured in the same run); target at least 0.7x.

Usage: python bench/bench_training_setup.py [--tiles 200] [--polygons 73227] [--data /tmp/geotool-bench-setup]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

TILE, RES, COLS = 512, 0.5, 20
ORIGIN = (500000.0, 5000000.0)


def make_data(data: Path, tiles: int, polygons: int) -> tuple[list[Path], Path]:
    """The tiles and the GeoPackage (reused when present)."""
    import geopandas as gpd
    from rasterio.crs import CRS
    from rasterio.transform import from_origin
    from shapely.geometry import box

    from geotool.io.raster import Grid, write_raster

    data.mkdir(parents=True, exist_ok=True)
    paths = []
    rng = np.random.default_rng(0)
    rows = -(-tiles // COLS)
    span = TILE * RES
    for k in range(tiles):
        path = data / f"tile_{k:03d}.tif"
        paths.append(path)
        if path.exists():
            continue
        r, c = divmod(k, COLS)
        grid = Grid(CRS.from_epsg(32633), from_origin(ORIGIN[0] + c * span, ORIGIN[1] - r * span, RES, RES), TILE, TILE)
        write_raster(path, rng.integers(1, 255, (3, TILE, TILE), dtype=np.uint8), grid, nodata=0)
    labels = data / f"buildings_{polygons}.gpkg"
    if not labels.exists():
        x = rng.uniform(ORIGIN[0], ORIGIN[0] + COLS * span, polygons)
        y = rng.uniform(ORIGIN[1] - rows * span, ORIGIN[1], polygons)
        s = rng.uniform(4, 15, polygons)
        gdf = gpd.GeoDataFrame({"kind": ["Building"] * polygons}, geometry=[box(a, b, a + w, b + w) for a, b, w in zip(x, y, s)],
                               crs="EPSG:32633")
        gdf.to_file(labels, driver="GPKG", engine="pyogrio")
    return paths, labels


def config(images, labels):
    from geotool.config import load_config
    from geotool.segmentation.config import SegmentationConfig

    return load_config(SegmentationConfig, None, {"images": [str(p) for p in images], "labels": [str(labels)], "output": "unused",
                                                  "window": 256, "block": 256, "batch_size": 8, "steps_per_epoch": 50}, preset="buildings")


def child_setup(images, labels) -> dict:
    from geotool.segmentation.train import build_training_data

    t = time.perf_counter()
    data = build_training_data(config(images, labels))
    seconds = time.perf_counter() - t
    return {"seconds": seconds, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "scenes": len(data.train_scenes)}


def child_throughput(images, labels, n: int = 200) -> dict:
    """Windows/s of the training dataset vs a plain rasterio read + rasterize of the same windows."""
    import rasterio
    from rasterio.windows import Window

    from geotool.io.raster import read_grid
    from geotool.io.vector import rasterize, read_vector
    from geotool.segmentation.train import build_training_data

    data = build_training_data(config(images, labels))
    ds = data.train_ds
    t = time.perf_counter()
    picks = []
    for i in range(n):
        ds[i]
        picks.append(ds._draw(np.random.default_rng([ds.seed, ds.epoch, i])))
    ours = n / (time.perf_counter() - t)
    grids = [read_grid(p) for p in images]
    gdf = read_vector(labels)  # the baseline's labels are in memory already, in the rasters' CRS
    t = time.perf_counter()
    for k, row, col in picks:
        w = Window(col, row, ds.window, ds.window)
        with rasterio.open(images[k]) as src:
            src.read(window=w, boundless=True, fill_value=0).astype(np.float32)
        rasterize(gdf, grids[k], window=w)
    baseline = n / (time.perf_counter() - t)
    return {"windows_per_s": ours, "baseline_windows_per_s": baseline}


def run_child(*args) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GDAL_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, __file__, *map(str, args)], capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiles", type=int, default=200)
    ap.add_argument("--polygons", type=int, default=73227)
    ap.add_argument("--data", type=Path, default=Path("/tmp/geotool-bench-setup"))
    ap.add_argument("--child", choices=["setup", "throughput"])
    ap.add_argument("--n", type=int, default=1)
    args = ap.parse_args()
    images, labels = make_data(args.data, args.tiles, args.polygons)
    if args.child:
        result = child_setup(images[: args.n], labels) if args.child == "setup" else child_throughput(images[: args.n], labels)
        print(json.dumps(result))
        return
    print(f"conditions: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start, one thread per process "
          f"(OMP_NUM_THREADS=1), {args.tiles} tiles of {TILE}x{TILE} uint8 RGB, one GeoPackage of {args.polygons} squares")
    common = ["--tiles", args.tiles, "--polygons", args.polygons, "--data", args.data]
    one = run_child("--child", "setup", "--n", 1, *common)
    many = run_child("--child", "setup", "--n", args.tiles, *common)
    print(f"setup, 1 tile:     {one['seconds']:.2f} s, peak RSS {one['peak_rss_mb']:.0f} MB")
    print(f"setup, {args.tiles} tiles: {many['seconds']:.2f} s, peak RSS {many['peak_rss_mb']:.0f} MB "
          f"-> {many['seconds'] / one['seconds']:.2f}x the 1-tile setup (target <= 3x; RSS target <= 2048 MB)")
    tp = run_child("--child", "throughput", "--n", args.tiles, *common)
    print(f"dataset: {tp['windows_per_s']:.1f} windows/s vs plain rasterio read + rasterize {tp['baseline_windows_per_s']:.1f} "
          f"windows/s -> {tp['windows_per_s'] / tp['baseline_windows_per_s']:.2f}x (target >= 0.7x)")
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()

"""Training setup at scale: N tiles + one large label GeoPackage (issue #14).

Builds (once, in --data) 200 uint8 RGB tiles of 512 x 512 (0.5 m, UTM 33N, a 20 x 10 mosaic) and one
GeoPackage of 73,227 building-like squares over the mosaic, then measures, each in a fresh process:

- setup: ``build_training_data`` (scenes, labels, split, normalisation, datasets) for 1 tile and for all
  tiles: seconds and peak RSS; target (#14) at most 3x the 1-tile seconds and 2 GB;
- dataset throughput: training windows per second from the dataset (read, labels, normalisation and the
  preset's augmentation) vs a plain rasterio random-window read plus rasterize of the same windows (the
  baseline, measured in the same run, in alternating rounds of fresh windows); target at least 0.7x;
- labels rasterized per window on demand vs once per scene (time, and the memory the latter would keep).

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


def config(images, labels, cache_mb: float = 512):
    from geotool.config import load_config
    from geotool.segmentation.config import SegmentationConfig

    return load_config(SegmentationConfig, None, {"images": [str(p) for p in images], "labels": [str(labels)], "output": "unused",
                                                  "window": 256, "block": 256, "batch_size": 8, "steps_per_epoch": 50,
                                                  "cache_mb": cache_mb}, preset="buildings")


def child_setup(images, labels) -> dict:
    from geotool.segmentation.train import build_training_data

    t = time.perf_counter()
    data = build_training_data(config(images, labels))
    seconds = time.perf_counter() - t
    return {"seconds": seconds, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "scenes": len(data.train_scenes)}


def child_throughput(images, labels, n: int = 200, rounds: int = 5) -> dict:
    """Windows/s of the training dataset vs a plain rasterio read + rasterize of the same windows."""
    import rasterio
    from rasterio.windows import Window

    from geotool.io.raster import read_grid
    from geotool.io.vector import rasterize, read_vector
    from geotool.segmentation.train import build_training_data

    data = build_training_data(config(images, labels))
    ds = data.train_ds
    grids = [read_grid(p) for p in images]
    gdf = read_vector(labels)  # the baseline's labels are in memory already, in the rasters' CRS
    gdf.sindex
    ours, baseline = [], []
    # rounds alternate the two on the same windows (a new epoch's windows each round), so that load from
    # other processes falls on both; the block cache warms over the rounds as it does over epochs
    for epoch in range(rounds):
        ds.epoch = epoch
        t = time.perf_counter()
        for i in range(n):
            ds[i]
        ours.append(n / (time.perf_counter() - t))
        picks = [ds._draw(np.random.default_rng([ds.seed, epoch, i])) for i in range(n)]  # the windows just read
        t = time.perf_counter()
        for k, row, col in picks:
            w = Window(col, row, ds.window, ds.window)
            with rasterio.open(images[k]) as src:
                src.read(window=w, boundless=True, fill_value=0).astype(np.float32)
            rasterize(gdf, grids[k], window=w)
        baseline.append(n / (time.perf_counter() - t))
    # labels: rasterized per window on demand (what the dataset does) vs once per scene
    scenes = data.train_scenes
    t = time.perf_counter()
    for k, row, col in picks:  # the last round's windows
        scenes[k].labels_reader.read(Window(col, row, ds.window, ds.window))
    per_window_ms = 1000 * (time.perf_counter() - t) / n
    t = time.perf_counter()
    whole = [s.labels_reader.read(Window(0, 0, s.grid.width, s.grid.height)) for s in scenes]
    per_scene_ms = 1000 * (time.perf_counter() - t) / len(scenes)
    from geotool.io.windows import block_cache

    cache = block_cache()
    return {"windows_per_s": ours, "baseline_windows_per_s": baseline, "label_window_ms": per_window_ms,
            "label_scene_ms": per_scene_ms, "label_scenes_mb": sum(w.nbytes for w in whole) / 2**20,
            "cache_mb": cache.nbytes / 2**20, "cache_hits": cache.hits, "cache_misses": cache.misses}


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
    from geotool.io.windows import CACHE_MB, MAX_OPEN

    print(f"conditions: {os.cpu_count()} cores, load average {' / '.join(f'{x:.2f}' for x in os.getloadavg())} (1/5/15 min) "
          f"at start, one thread per process (OMP_NUM_THREADS=1, GDAL_NUM_THREADS=1), block cache {CACHE_MB} MB, at most "
          f"{MAX_OPEN} open datasets, {args.tiles} tiles of {TILE}x{TILE} uint8 RGB, one GeoPackage of {args.polygons} squares, "
          f"window 256, preset buildings (positive_fraction 0.5)")
    common = ["--tiles", args.tiles, "--polygons", args.polygons, "--data", args.data]
    one = run_child("--child", "setup", "--n", 1, *common)
    many = run_child("--child", "setup", "--n", args.tiles, *common)
    print(f"setup, 1 tile:     {one['seconds']:.2f} s, peak RSS {one['peak_rss_mb']:.0f} MB")
    print(f"setup, {args.tiles} tiles: {many['seconds']:.2f} s, peak RSS {many['peak_rss_mb']:.0f} MB "
          f"-> {many['seconds'] / one['seconds']:.2f}x the 1-tile setup (target <= 3x; RSS target <= 2048 MB)")
    tp = run_child("--child", "throughput", "--n", args.tiles, *common)
    for r, (a, b) in enumerate(zip(tp["windows_per_s"], tp["baseline_windows_per_s"])):
        print(f"dataset, round {r} ({'cold cache' if r == 0 else 'warmer cache'}): {a:.1f} windows/s vs plain rasterio read + "
              f"rasterize {b:.1f} windows/s -> {a / b:.2f}x")
    ratios = [a / b for a, b in zip(tp["windows_per_s"], tp["baseline_windows_per_s"])]
    print(f"dataset throughput: {ratios[0]:.2f}x in the cold round, median {float(np.median(ratios)):.2f}x over "
          f"{len(ratios)} rounds (target >= 0.7x)")
    print(f"labels: rasterized per window {tp['label_window_ms']:.2f} ms/window vs once per scene {tp['label_scene_ms']:.2f} "
          f"ms/scene holding {tp['label_scenes_mb']:.0f} MB of uint8 for all scenes; block cache after the run "
          f"{tp['cache_mb']:.0f} MB, {tp['cache_hits']} hits / {tp['cache_misses']} misses")
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()

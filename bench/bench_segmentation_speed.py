"""Segmentation benchmarks: tiled-prediction overhead, peak memory 20000^2 vs 2000^2, training throughput.

Usage:
    nice -n 10 python bench/bench_segmentation_speed.py [--train-steps 20] [--skip-memory]

The scenes are the real SpaceNet 7 crop in data_samples/ (the 20000^2 raster repeats it).

Prints each figure and its ratio against the baseline measured in the same run:
- overhead: run_tiled over a scene vs bare forward passes on the same windows (same batch size);
- memory: peak RSS of a child `geotool predict` on a 20000 x 20000 3-band raster vs a 2000 x 2000 one,
  both built by tiling real data into a temp folder (written block by block);
- throughput: training windows per second of the default building model on CPU.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

GEOTOOL = str(Path(sys.executable).with_name("geotool"))


def tile_raster(src_path: str, out: Path, size: int) -> None:
    """A size x size 3-band uint16 raster made by repeating a real crop, written block by block."""
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    from geotool.io.raster import Grid, RasterSource, RasterWriter

    with RasterSource(src_path, bands=[1, 2, 3]) as src:
        data, valid = src.read()
        g = src.grid
    tile = np.where(valid[None], data, 1).astype(np.uint16)
    th, tw = tile.shape[1:]
    grid = Grid(g.crs, from_origin(g.transform.c, g.transform.f, g.transform.a, -g.transform.e), size, size)
    with RasterWriter(out, grid, 3, "uint16", 0) as w:
        for r in range(0, size, 256):
            h = min(256, size - r)
            rows = (np.arange(r, r + h) % th)
            cols = (np.arange(size) % tw)
            w.write(tile[:, rows][:, :, cols], Window(0, r, size, h))


def train_tiny(img: str, labels: str, out: Path, steps: int, window: int = 256) -> float:
    t = time.perf_counter()
    cmd = [GEOTOOL, "--quiet", "train-segmentation", "--task", "buildings", "--images", img, "--labels", labels,
           "--window", str(window), "--block", str(window), "--max-steps", str(steps), "--steps-per-epoch", str(steps), "--threads", "2",
           "--output", str(out)]
    subprocess.run(cmd, check=True)
    return time.perf_counter() - t


def overhead(model: Path, raster: str) -> None:
    import torch

    from geotool.io.raster import RasterSource
    from geotool.io.tiling import TilingSpec, plan_windows
    from geotool.segmentation.predict import PredictConfig, make_predict_fn, predict_raster
    from geotool.segmentation.train import load_model

    torch.set_num_threads(2)
    net, payload = load_model(model)
    with tempfile.TemporaryDirectory() as d:
        cfg = PredictConfig(model=str(model), rasters=[raster], output=d, preview=False, batch_size=8)
        predict_raster(net, payload, raster, Path(d), cfg, "cpu")  # warm-up
        t = time.perf_counter()
        res = predict_raster(net, payload, raster, Path(d), cfg, "cpu")
        tiled = time.perf_counter() - t
    spec = TilingSpec(window=payload["window"], overlap=payload["overlap"], batch_size=8)
    fn = make_predict_fn(net, payload["mean"], payload["std"], "cpu")
    with RasterSource(raster, bands=payload["bands"]) as src:
        wins = plan_windows(src.grid, spec)
        arrays = [src.read(w, dtype="float32") for w in wins]
    t = time.perf_counter()
    for i in range(0, len(arrays), 8):
        chunk = arrays[i : i + 8]
        fn(np.stack([a[0] for a in chunk]), np.stack([a[1] for a in chunk]))
    bare = time.perf_counter() - t
    print(f"overhead: {res['windows']} windows, tiled predict {tiled:.2f} s, bare forward passes {bare:.2f} s, "
          f"ratio {tiled / bare:.3f}")


def peak_rss_mb(cmd: list[str]) -> float:
    """Peak RSS of a child process (MB), via wait4 rusage."""
    import os

    proc = subprocess.Popen(cmd)
    _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        raise SystemExit(f"{cmd} failed")
    return usage.ru_maxrss / 1024


def memory(model: Path, real: str) -> None:
    with tempfile.TemporaryDirectory() as d:
        peaks = {}
        for size in (2000, 20000):
            path = Path(d) / f"tiled_{size}.tif"
            t = time.perf_counter()
            tile_raster(real, path, size)
            print(f"built {path.name} in {time.perf_counter() - t:.1f} s")
            t = time.perf_counter()
            peaks[size] = peak_rss_mb([GEOTOOL, "--quiet", "predict", str(model), str(path), "--output", str(Path(d) / f"o{size}"),
                                       "--no-preview", "--threads", "2", "--batch-size", "8"])
            print(f"memory: {size} x {size}: peak RSS {peaks[size]:.0f} MB, {time.perf_counter() - t:.0f} s")
            for f in Path(d).glob(f"o{size}/*.tif"):
                f.unlink()
            path.unlink()
        print(f"memory: ratio 20000^2 / 2000^2 = {peaks[20000] / peaks[2000]:.3f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--train-steps", type=int, default=20)
    ap.add_argument("--skip-memory", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        run = Path(d) / "run"
        seconds = train_tiny("data_samples/buildings/SN7_mosaic_clipped.tif", "data_samples/buildings/SN7_buildings.geojson",
                             run, args.train_steps)
        batch = 8
        print(f"throughput: default building model (Unet resnet18, 256 px, batch {batch}): {args.train_steps} steps "
              f"in {seconds:.1f} s wall (incl. start-up) = {args.train_steps * batch / seconds:.2f} windows/s")
        overhead(run / "model.ckpt", "data_samples/buildings/SN7_mosaic_clipped.tif")
        if not args.skip_memory:
            memory(run / "model.ckpt", "data_samples/buildings/SN7_mosaic_clipped.tif")


if __name__ == "__main__":
    main()

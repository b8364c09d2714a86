"""The sliding-window engine with GDAL's block cache as sized now vs the 16-byte cache it ran with before
(GDAL_CACHEMAX given in MB where GDAL reads bytes).

Usage:
    nice -n 5 python bench/bench_engine_cache.py [--size 4000] [--repeats 3]

A size x size uint8 RGB raster tiled from the SpaceNet-7 crop in data_samples/ goes through ``run_tiled``
with a trivial per-pixel model (2 classes: class raster + probabilities), so the figure is the engine's own
reading, blending and writing. Prints the conditions (GDAL version, cache in force inside the run, threads,
load), each median wall time and the ratio of the 16-byte run to the sized run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_tiled_memory import tile_raster  # noqa: E402

from geotool.io import tiling  # noqa: E402
from geotool.io.gdal_settings import gdal_cache_max, gdal_conditions  # noqa: E402
from geotool.io.raster import RasterSource, RasterWriter, open_writers  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def run_once(raster: Path, out_dir: Path, seen: list) -> float:
    def predict(batch, valid):
        seen.append(gdal_cache_max())
        p = batch[:, :1] / 255.0
        return np.concatenate([1 - p, p], axis=1)

    def finalize(blended, raw, valid):
        cls = blended.argmax(0).astype(np.uint8)
        cls[~valid] = 255
        return {"classes": cls, "probs": np.where(valid[None], blended, np.float32(-1))}

    t = time.perf_counter()
    with RasterSource(raster) as src:
        writers = {"classes": RasterWriter(out_dir / "classes.tif", src.grid, 1, "uint8", 255, ["class"]),
                   "probs": RasterWriter(out_dir / "probs.tif", src.grid, 2, "float32", -1.0, ["p0", "p1"])}
        with open_writers(writers) as opened:
            tiling.run_tiled(src, predict, 2, finalize, opened, tiling.TilingSpec(window=256, overlap=64, batch_size=8))
    return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=4000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    sized = tiling.gdal_cache_bytes
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        raster = tmp / "scene.tif"
        tile_raster(ROOT / "data_samples/buildings/SN7_mosaic_clipped.tif", raster, args.size)
        print(f"conditions: {gdal_conditions()}; cpus {os.cpu_count()}, load {os.getloadavg()[0]:.2f}; "
              f"{args.size} x {args.size} uint8 RGB, window 256, overlap 64")
        times = {"sized": [], "16 bytes": []}
        for _ in range(args.repeats):  # interleaved, so load drift hits both alike
            for name in times:
                seen: list = []
                tiling.gdal_cache_bytes = sized if name == "sized" else (lambda *a: 16)
                times[name].append(run_once(raster, tmp, seen))
                print(f"  {name:>8}: {times[name][-1]:.2f} s (cache inside the run {min(seen) / 2**20:.2f} MiB)")
        tiling.gdal_cache_bytes = sized
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"median sized cache {med['sized']:.2f} s, 16-byte cache {med['16 bytes']:.2f} s, "
          f"ratio {med['16 bytes'] / med['sized']:.2f}x")


if __name__ == "__main__":
    main()

"""What finishing a COG output costs, by step: the stream written tile row by tile row, the overviews, the COG copy.

Usage:
    nice -n 5 python bench/bench_cog_finish.py [--size 4000] [--repeats 2]

The engine's own outputs (class raster uint8 with a colour table, probabilities 2 x float32) of a --size scene
(bench_engine_floor's: the SN-7 crop repeated, trivial model) are kept in memory, then finished in each way,
interleaved:

- ``driver``: the finishing before issue 14's COG work: a ZSTD level 1 stream (with predictor), copied by GDAL's
  COG driver, which builds the overviews itself (``OVERVIEWS=AUTO``: in a temp file, compressed, read back and
  compressed again).
- ``own, zstd``: the same stream, its overviews built once by ``BuildOverviews`` (external .ovr, ZSTD 1), then
  ``OVERVIEWS=FORCE_USE_EXISTING``.
- ``own, deflate``: a DEFLATE stream (the COG's own compression) with its own overviews: shows whether GDAL copies
  tiles that are already compressed as the COG wants them (it does not: it decompresses and compresses them again).
- ``own, raw``: what :class:`geotool.io.raster.RasterWriter` does now: an uncompressed stream and overviews,
  so the COG copy's DEFLATE is the only compression.

Each run checks that the COG holds the same pixels. Prints the conditions (GDAL, cache, threads, load).
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
import rasterio
from rasterio.enums import Resampling
from rasterio.shutil import copy as gdal_copy
from rasterio.windows import Window

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_engine_floor import ROOT, run_engine  # noqa: E402
from bench_tiled_memory import tile_raster  # noqa: E402

from geotool.io.gdal_settings import compression_threads, gdal_conditions  # noqa: E402
from geotool.io.raster import COG_CACHE_BYTES, _cog_options, cog_overview_factors  # noqa: E402

WAYS = ("driver", "own, zstd", "own, deflate", "own, raw")


def finish(arr: np.ndarray, profile: dict, categorical: bool, way: str, tmp: Path) -> tuple[float, float, float]:
    """Seconds to write the stream, build the overviews, copy the COG (and checks the pixels)."""
    stream, out = tmp / "stream.tif", tmp / "out.tif"
    for f in (stream, out, tmp / "stream.tif.ovr"):
        f.unlink(missing_ok=True)
    predictor = 3 if arr.dtype.kind == "f" else 2
    threads = compression_threads()
    comp = {"compress": "none"} if way == "own, raw" else {"compress": "zstd", "zstd_level": 1, "predictor": predictor,
                                                            "NUM_THREADS": threads}
    if way == "own, deflate":
        comp = {"compress": "deflate", "predictor": predictor, "NUM_THREADS": threads}
    resampling = "NEAREST" if categorical else "AVERAGE"
    t0 = time.perf_counter()
    with rasterio.open(stream, "w", **profile, count=arr.shape[0], dtype=arr.dtype.name, tiled=True, blockxsize=256,
                       blockysize=256, BIGTIFF="IF_SAFER", **comp) as ds:
        if categorical:
            ds.write_colormap(1, {0: (190, 190, 190, 255), 1: (228, 26, 28, 255), 255: (0, 0, 0, 0)})
        for r in range(0, arr.shape[1], 256):
            ds.write(arr[:, r : r + 256], window=Window(0, r, arr.shape[2], min(256, arr.shape[1] - r)))
    t1 = time.perf_counter()
    with rasterio.Env(GDAL_CACHEMAX=COG_CACHE_BYTES):
        if way == "driver":
            options = _cog_options(arr.dtype, resampling, overviews="AUTO")
        else:
            ovr = {"COMPRESS_OVERVIEW": "NONE"} if way == "own, raw" else {
                "COMPRESS_OVERVIEW": "ZSTD", "ZSTD_LEVEL_OVERVIEW": "1", "PREDICTOR_OVERVIEW": str(predictor)}
            if way == "own, deflate":
                ovr = {"COMPRESS_OVERVIEW": "DEFLATE", "PREDICTOR_OVERVIEW": str(predictor)}
            with rasterio.Env(GDAL_NUM_THREADS=str(threads), TIFF_USE_OVR="YES", **ovr), rasterio.open(stream, "r+") as ds:
                ds.build_overviews(cog_overview_factors(arr.shape[2], arr.shape[1]), Resampling[resampling.lower()])
            options = _cog_options(arr.dtype, resampling)
        t2 = time.perf_counter()
        gdal_copy(stream, out, driver="COG", **options)
    t3 = time.perf_counter()
    with rasterio.open(out) as ds:
        assert ds.read().tobytes() == arr.tobytes(), f"{way}: the COG's pixels differ"
    return t1 - t0, t2 - t1, t3 - t2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=4000)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_cog_finish_") as d:
        tmp = Path(d)
        tile_raster(ROOT / "data_samples/buildings/SN7_mosaic_clipped.tif", tmp / "scene.tif", args.size)
        run_engine(tmp / "scene.tif", tmp, ("classes", "probs"), cog=False)
        arrays, profiles = {}, {}
        for name in ("classes", "probs"):
            with rasterio.open(tmp / f"{name}.tif") as ds:
                arrays[name] = ds.read()
                profiles[name] = dict(driver="GTiff", width=ds.width, height=ds.height, crs=ds.crs,
                                      transform=ds.transform, nodata=ds.nodata)
        print(f"conditions: {gdal_conditions()}; cpus {os.cpu_count()}, load {os.getloadavg()[0]:.2f}; "
              f"{args.size} x {args.size}: class raster uint8, probabilities 2 x float32", flush=True)
        for name in ("classes", "probs"):
            times = {w: [] for w in WAYS}
            for _ in range(args.repeats):
                for way in WAYS:
                    load = os.getloadavg()[0]
                    times[way].append(finish(arrays[name], profiles[name], name == "classes", way, tmp))
                    s, o, c = times[way][-1]
                    print(f"  {name}: {way:>10}: stream {s:.2f} s, overviews {o:.2f} s, COG copy {c:.2f} s (load {load:.2f})",
                          flush=True)
            base = statistics.median(o + c for _, o, c in times["driver"])
            for way in WAYS:
                med = [statistics.median(t[i] for t in times[way]) for i in range(3)]
                after = statistics.median(o + c for _, o, c in times[way])
                print(f"{name}: {way}: stream {med[0]:.2f} s, overviews {med[1]:.2f} s, COG copy {med[2]:.2f} s; "
                      f"after the last row {after:.2f} s ({after / base:.2f}x the driver's)", flush=True)


if __name__ == "__main__":
    main()

"""The sliding-window engine with a trivial model against the I/O floor, and a model as slow as the engine.

Usage:
    nice -n 5 python bench/bench_engine_floor.py [--size 8000] [--sleep-size 4000] [--repeats 2] [--part floor|sleep|all]

Scene: size x size uint8 RGB, tiled 256 deflate, repeating the SpaceNet-7 crop of data_samples/. Window 256,
overlap 64, batch 8; the model is per-pixel (2 classes from band 1), so the figures are the engine's own
reading, blending, finalizing and writing.

- floor: the same input read tile row by tile row (all bands in one read) plus the engine's outputs (kept in
  memory from a first run) written tile row by tile row as tiled deflate GeoTIFFs of the same dtype and
  predictor: what reading and writing those bytes costs at least. Printed single-threaded (plain rasterio,
  the baseline of issue 14) and with GDAL compressing on the engine's threads. The engine is timed with its
  COG outputs (stream + overviews + COG copy, the default), with the COG finishing of before (``engine COG
  (old)``: ZSTD stream, GDAL's COG driver making the overviews), streaming only (``cog=False``), and serial
  (``pipeline_depth=0``); for the class raster alone and for class + probabilities (``--variants`` picks).
- sleep (on a --sleep-size scene): the model sleeps, per batch, the engine's own time per batch (trivial-model
  run, pipelined), so model and engine each need about the same time; wall time vs the larger of the two
  (target <= 1.15x), pipelined and serial, with streamed outputs and with COG outputs.

Prints the conditions (GDAL version and cache, compression threads, CPUs, load average before each run).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import rasterio
from rasterio.windows import Window

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_tiled_memory import tile_raster  # noqa: E402

from geotool.io import tiling  # noqa: E402
from geotool.io.gdal_settings import compression_threads, gdal_conditions  # noqa: E402
from geotool.io.raster import RasterSource, RasterWriter, open_writers  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SPEC = tiling.TilingSpec(window=256, overlap=64, batch_size=8)


def trivial(batch, valid):
    p = batch[:, :1] / np.float32(255)
    return np.concatenate([1 - p, p], axis=1)


def finalize_for(sinks):
    def finalize(blended, raw, valid):
        cls = tiling.class_argmax(blended)  # as predict finishes its class raster
        cls[~valid] = 255
        out = {"classes": cls}
        if "probs" in sinks:
            out["probs"] = np.where(valid[None], blended, np.float32(-1))
        return out

    return finalize


@contextmanager
def old_cog_finish():
    """The COG finishing before commit "COG outputs: stream uncompressed...": a ZSTD level 1 stream (with
    predictor) copied by GDAL's COG driver, which builds the overviews itself (OVERVIEWS=AUTO) in a temp file; one
    output after the other."""
    from geotool.io import raster
    from geotool.io.gdal_settings import compression_threads

    saved = raster._stream_options, raster.cog_overview_factors, raster._cog_options, raster._prepare_all
    raster._stream_options = lambda dtype, *a: {
        "compress": "zstd", "zstd_level": 1, "predictor": 3 if np.dtype(dtype).kind == "f" else 2, "tiled": True,
        "blockxsize": 256, "blockysize": 256, "BIGTIFF": "IF_SAFER", "NUM_THREADS": compression_threads()}
    raster.cog_overview_factors = lambda *a, **k: []
    raster._cog_options = lambda dtype, resampling, overviews="AUTO": saved[2](dtype, resampling, "AUTO")
    raster._prepare_all = lambda writers: None
    try:
        yield
    finally:
        raster._stream_options, raster.cog_overview_factors, raster._cog_options, raster._prepare_all = saved


def run_engine(raster: Path, out: Path, sinks, depth=tiling.PIPELINE_DEPTH, cog=True, predict=trivial,
               old_cog=False) -> tuple[float, tiling.TilingStats]:
    if old_cog:
        with old_cog_finish():
            return run_engine(raster, out, sinks, depth, cog, predict)
    t = time.perf_counter()
    with RasterSource(raster) as src:
        writers = {"classes": RasterWriter(out / "classes.tif", src.grid, 1, "uint8", 255, categories=["a", "b"], cog=cog)}
        if "probs" in sinks:
            writers["probs"] = RasterWriter(out / "probs.tif", src.grid, 2, "float32", -1.0, cog=cog)
        with open_writers(writers) as opened:
            stats = tiling.run_tiled(src, predict, 2, finalize_for(sinks), opened, SPEC, pipeline_depth=depth,
                                     finalize_input=False)  # as predict: its finalize does not use the input
    return time.perf_counter() - t, stats


def run_floor(raster: Path, out: Path, arrays: dict[str, np.ndarray], threads: int) -> float:
    """Read the input and write ``arrays`` tile row by tile row, tiled deflate, nothing else."""
    t = time.perf_counter()
    with rasterio.open(raster) as src:
        profile = dict(driver="GTiff", width=src.width, height=src.height, crs=src.crs, transform=src.transform,
                       tiled=True, blockxsize=256, blockysize=256, compress="deflate", BIGTIFF="IF_SAFER")
        if threads > 1:
            profile["NUM_THREADS"] = threads
        outs = {name: rasterio.open(out / f"floor_{name}.tif", "w", count=a.shape[0], dtype=a.dtype,
                                    predictor=3 if a.dtype.kind == "f" else 2, **profile) for name, a in arrays.items()}
        try:
            for r in range(0, src.height, 256):
                w = Window(0, r, src.width, min(256, src.height - r))
                src.read(window=w)
                for name, ds in outs.items():
                    ds.write(arrays[name][:, r : r + int(w.height)], window=w)
        finally:
            for ds in outs.values():
                ds.close()
    return time.perf_counter() - t


def load() -> str:
    return f"load {os.getloadavg()[0]:.2f}"


VARIANTS = ("floor", "floor (threads)", "engine COG", "engine COG (old)", "engine stream", "engine serial")


def part_floor(raster: Path, tmp: Path, repeats: int, variants=VARIANTS) -> None:
    for sinks in (("classes",), ("classes", "probs")):
        label = " + ".join(sinks)
        run_engine(raster, tmp, sinks)  # warm-up, and the outputs the floor writes
        arrays = {}
        for name in sinks:
            with rasterio.open(tmp / f"{name}.tif") as ds:
                arrays[name] = ds.read()
        times: dict[str, list[float]] = {k: [] for k in VARIANTS if k in variants or k == "floor"}
        for _ in range(repeats):  # interleaved, so load drift hits all alike
            for name in times:
                before = load()
                if name == "floor":
                    times[name].append(run_floor(raster, tmp, arrays, 1))
                elif name == "floor (threads)":
                    times[name].append(run_floor(raster, tmp, arrays, compression_threads()))
                else:
                    kwargs = {"engine COG": {}, "engine COG (old)": {"old_cog": True}, "engine stream": {"cog": False},
                              "engine serial": {"depth": 0}}[name]
                    times[name].append(run_engine(raster, tmp, sinks, **kwargs)[0])
                print(f"  {label}: {name:>16} {times[name][-1]:6.2f} s ({before})", flush=True)
        del arrays
        med = {k: statistics.median(v) for k, v in times.items()}
        base = med["floor"]
        print(f"{label}: " + ", ".join(f"{k} {v:.2f} s ({v / base:.2f}x the floor)" for k, v in med.items())
              + " (target <= 1.3x)", flush=True)
        if "engine COG" in med and "engine COG (old)" in med:
            print(f"{label}: engine COG / engine COG (old) {med['engine COG'] / med['engine COG (old)']:.2f}x", flush=True)


def part_sleep(raster: Path, tmp: Path, repeats: int) -> None:
    """Streamed outputs (``cog=False``: every step can overlap with the model) and COG outputs (whose copy,
    after the last row, cannot: nothing is left for the model to do by then)."""
    sinks = ("classes", "probs")
    starts = tiling.window_starts(_size(raster), SPEC.window, SPEC.stride)  # square scene: rows and columns alike
    n_batches = len(starts) * -(-len(starts) // SPEC.batch_size)
    for cog, old in ((False, False), (True, False), (True, True)):
        label = "COG (old finish)" if old else "COG" if cog else "streamed"
        run_engine(raster, tmp, sinks, cog=cog, old_cog=old)  # warm-up
        own = statistics.median(run_engine(raster, tmp, sinks, cog=cog, old_cog=old)[0] for _ in range(repeats))
        per_batch = own / n_batches

        def sleepy(batch, valid, _s=per_batch):
            time.sleep(_s)
            return trivial(batch, valid)

        model = per_batch * n_batches
        for depth in (tiling.PIPELINE_DEPTH, 0):
            walls = []
            for _ in range(repeats):
                before = load()
                walls.append(run_engine(raster, tmp, sinks, depth=depth, cog=cog, predict=sleepy, old_cog=old)[0])
                print(f"  sleep model, {label} outputs, pipeline depth {depth}: {walls[-1]:.2f} s ({before})", flush=True)
            wall = statistics.median(walls)
            print(f"sleep model, {label} outputs ({n_batches} batches x {per_batch * 1000:.0f} ms = "
                  f"{model:.2f} s; engine alone {own:.2f} s), pipeline depth {depth}: wall {wall:.2f} s = "
                  f"{wall / max(own, model):.2f}x the larger (target <= 1.15x; their sum would be "
                  f"{(own + model) / max(own, model):.2f}x)", flush=True)


def _size(raster: Path) -> int:
    with rasterio.open(raster) as ds:
        return ds.width


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=8000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--part", choices=["floor", "sleep", "all"], default="all")
    parser.add_argument("--sleep-size", type=int, default=4000, help="scene side for the sleep part")
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help="comma-separated timings of the floor part (the floor itself always runs): " + ", ".join(VARIANTS))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_engine_") as d:
        tmp = Path(d)
        raster = tmp / "scene.tif"
        tile_raster(ROOT / "data_samples/buildings/SN7_mosaic_clipped.tif", raster, args.size)
        print(f"conditions: {gdal_conditions()}; cpus {os.cpu_count()}, {load()}; {args.size} x {args.size} uint8 RGB "
              f"tiled deflate, window {SPEC.window}, overlap {SPEC.overlap}, batch {SPEC.batch_size}, "
              f"pipeline depth {tiling.PIPELINE_DEPTH}", flush=True)
        if args.part in ("floor", "all"):
            part_floor(raster, tmp, args.repeats, [v.strip() for v in args.variants.split(',')])
        if args.part in ("sleep", "all"):
            small = tmp / "sleep_scene.tif"
            tile_raster(ROOT / "data_samples/buildings/SN7_mosaic_clipped.tif", small, args.sleep_size)
            print(f"sleep part: {args.sleep_size} x {args.sleep_size}, class + probabilities", flush=True)
            part_sleep(small, tmp, args.repeats)


if __name__ == "__main__":
    main()

"""What `predict`'s default preview PNG adds to a run: predict with the preview vs `--no-preview`, same run.

Usage:
    nice -n 5 python bench/bench_engine_preview.py [--tiles 50] [--tile-size 512] [--size 4000] [--repeats 2]
        [--workloads tiles,scene]

Two workloads, each made by repeating the SpaceNet-7 crop of data_samples/: many small scenes (``--tiles`` of
``--tile-size``^2, where a fixed cost per preview weighs most) and one large scene (``--size``^2). The model is
the light one of bench_tiled_memory.py (Linknet + mobilenet_v2, encoder depth 3, trained 1 step; window 512,
overlap 64, batch 4, 2 threads). `run_predict` runs in this process (the model loads once per run, as in a
batch), with and without previews, interleaved; prints each median and the ratio (target: at most 1.05).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_tiled_memory import segmentation_model, tile_raster  # noqa: E402

from geotool.io.gdal_settings import gdal_conditions  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def timed_predict(model: Path, rasters: list[Path], out: Path, preview: bool) -> float:
    from geotool.segmentation.predict import PredictConfig, run_predict

    cfg = PredictConfig(model=str(model), rasters=[str(r) for r in rasters], output=str(out), preview=preview,
                        window=512, overlap=64, batch_size=4, threads=2)
    t = time.perf_counter()
    run_predict(cfg)
    return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiles", type=int, default=50)
    parser.add_argument("--tile-size", type=int, default=512)
    parser.add_argument("--size", type=int, default=4000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--workloads", default="tiles,scene", help="comma-separated: tiles, scene")
    args = parser.parse_args()
    crop = ROOT / "data_samples/buildings/SN7_mosaic_clipped.tif"
    with tempfile.TemporaryDirectory(prefix="bench_preview_") as d:
        tmp = Path(d)
        model = segmentation_model(tmp)
        (tmp / "tiles").mkdir()
        tile_raster(crop, tmp / "tiles" / "t000.tif", args.tile_size)
        tiles = [tmp / "tiles" / f"t{i:03d}.tif" for i in range(args.tiles)]
        for t in tiles[1:]:
            t.write_bytes(tiles[0].read_bytes())
        big = tmp / "big.tif"
        tile_raster(crop, big, args.size)
        print(f"conditions: {gdal_conditions()}; cpus {os.cpu_count()}, load {os.getloadavg()[0]:.2f}; "
              f"light Linknet, window 512, overlap 64, batch 4, 2 torch threads", flush=True)
        workloads = {"tiles": (f"{args.tiles} scenes of {args.tile_size}^2", tiles), "scene": (f"one {args.size}^2 scene", [big])}
        for label, rasters in (workloads[w] for w in args.workloads.split(",")):
            times: dict[bool, list[float]] = {False: [], True: []}
            timed_predict(model, rasters[:1], tmp / "warm", True)  # warm-up (imports, first allocations)
            for _ in range(args.repeats):
                for preview in (False, True):
                    load = os.getloadavg()[0]
                    times[preview].append(timed_predict(model, rasters, tmp / f"out_{preview}", preview))
                    print(f"  {label}, preview {preview}: {times[preview][-1]:.2f} s (load {load:.2f})", flush=True)
            without, with_ = statistics.median(times[False]), statistics.median(times[True])
            print(f"{label}: --no-preview {without:.2f} s, default preview {with_:.2f} s, ratio {with_ / without:.3f} "
                  f"(target <= 1.05)", flush=True)


if __name__ == "__main__":
    main()

"""OBA speed: augmented 256 x 256 scenes per second on one core, against plain window reading.

Baseline (same run, same windows): read the window and rasterize its labels, which is what a segmentation
dataset does for every sample. OBA figures add composing onto that window (the on-the-fly path,
``OnlineOBA.sample_transform`` with p = 1) for a few settings. A step budget (``--scenes``), not a time
budget, so results do not depend on machine load.

    nice -n 10 python bench/bench_oba_speed.py --scenes 200
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "buildings"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default=str(DATA / "SN7_mosaic_clipped.tif"))
    parser.add_argument("--labels", default=str(DATA / "SN7_Buildings.geojson"))
    parser.add_argument("--bands", default="1,2,3")
    parser.add_argument("--scenes", type=int, default=200, help="scenes per setting (step budget)")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--files", type=int, default=20, help="scenes written by the oba-augment pipeline")
    args = parser.parse_args()

    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    from rasterio.windows import Window

    from geotool.io.raster import RasterSource
    from geotool.io.vector import rasterize, read_vector
    from geotool.oba.config import OBAConfig
    from geotool.oba.online import ObjectSource, build_online_oba

    bands = [int(b) for b in args.bands.split(",")]
    with RasterSource(args.image, bands=bands) as src:
        gdf = read_vector(args.labels, target=src.grid)
        t0 = time.perf_counter()
        hook = build_online_oba([ObjectSource(args.image, gdf)], OBAConfig(probability=1.0), bands=bands)
        bank_s = time.perf_counter() - t0
        print(f"bank: {len(hook.bank)} objects, {hook.bank.nbytes / 2**20:.2f} MiB, built in {bank_s:.2f} s")
        rng = np.random.default_rng(args.seed)
        H, W = src.grid.shape
        size = min(args.size, H, W)
        windows = [Window(int(rng.integers(0, W - size + 1)), int(rng.integers(0, H - size + 1)), size, size) for _ in range(args.scenes)]

        def load(w):
            data, valid = src.read(w, dtype="float32")
            mask = rasterize(gdf, src.grid, window=w).astype(np.int64)
            mask[~valid] = 255
            return data, mask, valid

        t0 = time.perf_counter()
        for w in windows:
            load(w)
        base = (time.perf_counter() - t0) / len(windows)
        print(f"baseline  read + rasterize {size}x{size}: {1 / base:8.1f} scenes/s ({base * 1e3:.2f} ms/scene)")
        settings = {
            "default (gaussian, 3-10 objects)": {},
            "hard blend": {"blend": "hard"},
            "rotation 180 + histogram match": {"max_rotation": 180.0, "match": "histogram"},
            "shadows on": {"shadows": {"enabled": True}},
            "20-30 objects": {"n_objects": (20, 30)},
        }
        for name, extra in settings.items():
            hook.cfg = OBAConfig(probability=1.0, **extra)
            srng = np.random.default_rng(args.seed)
            pasted = 0
            t0 = time.perf_counter()
            for w in windows:
                data, mask, valid = load(w)
                _, out_mask = hook.sample_transform(data, mask, valid, srng)
                pasted += int(((out_mask != mask) & (out_mask != 255)).any())
            per = (time.perf_counter() - t0) / len(windows)
            print(
                f"OBA {name:34s}: {1 / per:8.1f} scenes/s ({per * 1e3:.2f} ms/scene), "
                f"x{per / base:.2f} the baseline time, {pasted}/{len(windows)} scenes got objects"
            )
    bench_pipeline(args, bands)


def bench_pipeline(args, bands) -> None:
    """End to end ``oba-augment`` (bank, mining, compose, GeoTIFF + mask + GeoPackage writes, manifest)
    against writing the same number of plain window copies (image + mask GeoTIFF)."""
    import tempfile

    from rasterio.windows import Window

    from geotool.io.raster import RasterSource, write_raster
    from geotool.oba.config import OBAAugmentConfig, OBAConfig
    from geotool.oba.pipeline import run_oba_augment

    cfg = OBAConfig(bands=bands, scene_size=args.size, max_label_fraction=0.5)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        with RasterSource(args.image, bands=bands) as src:
            rng = np.random.default_rng(args.seed)
            H, W = src.grid.shape
            size = min(args.size, H, W)
            for k in range(args.files):
                w = Window(int(rng.integers(0, W - size + 1)), int(rng.integers(0, H - size + 1)), size, size)
                data, valid = src.read(w)
                grid = src.grid.window_grid(w)
                write_raster(Path(tmp) / f"copy_{k}.tif", data, grid, nodata=src.nodata[0])
                write_raster(Path(tmp) / f"copy_{k}_mask.tif", valid.astype(np.uint8), grid)
        base = (time.perf_counter() - t0) / args.files
        t0 = time.perf_counter()
        run = OBAAugmentConfig(**cfg.model_dump(), images=[str(args.image)], labels=str(args.labels), n=args.files,
                               output=str(Path(tmp) / "oba"), seed=args.seed, contact_sheet=False)
        result = run_oba_augment(run)
        per = (time.perf_counter() - t0) / args.files
    print(f"baseline  copy {args.files} windows to GeoTIFF (image + mask): {1 / base:6.1f} scenes/s ({base * 1e3:.1f} ms/scene)")
    print(
        f"oba-augment pipeline, {args.files} scenes incl. bank + mining: {1 / per:6.1f} scenes/s ({per * 1e3:.1f} ms/scene), "
        f"x{per / base:.2f} the baseline time; {result.objects} pasted, {result.skipped} skipped"
    )


if __name__ == "__main__":
    main()

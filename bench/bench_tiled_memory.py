"""Peak memory of the sliding-window engine: `geotool predict` and `geotool generate-nir` on a
20000 x 20000 3-band raster against a 2000 x 2000 one, same settings.

Both rasters are built in a temp folder by repeating a real crop (SpaceNet-7 RGB for `predict`, NAIP RGB
for `generate-nir`, both from data_samples/), written block by block. Each command runs in a child
process; its peak RSS comes from ``wait4`` (ru_maxrss). The baseline is the 2000^2 run in the same process.

Settings are identical for both sizes. To keep the 20000^2 runs at minutes on a 2-core CPU the models are
light (segmentation: Linknet + mobilenet_v2 with encoder_depth 3, trained 1 step; NIR: pix2pix U-Net with
ngf 8; both window 512, overlap 64); the model's own memory does not depend on the scene size.

    nice -n 10 python bench/bench_tiled_memory.py [--sizes 2000,20000] [--only predict|nir]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
sys.path.insert(0, str(Path(__file__).resolve().parent))


def tile_raster(src_path: Path, out: Path, size: int, bands=(1, 2, 3)) -> None:
    """A size x size raster repeating a real crop (its dtype; nodata pixels set to 1), written block by block
    as a plain tiled deflate GeoTIFF (no overviews: an input as users have them, built without the COG step)."""
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    from geotool.io.raster import Grid, RasterSource, RasterWriter

    with RasterSource(src_path, bands=list(bands)) as src:
        data, valid = src.read()
        g, dtype = src.grid, src.dtype
    tile = np.where(valid[None], data, 1).astype(dtype)
    th, tw = tile.shape[1:]
    grid = Grid(g.crs, from_origin(g.transform.c, g.transform.f, g.transform.a, -g.transform.e), size, size)
    cols = np.arange(size) % tw
    with RasterWriter(out, grid, len(bands), dtype, 0, cog=False) as w:
        for r in range(0, size, 512):
            h = min(512, size - r)
            w.write(tile[:, np.arange(r, r + h) % th][:, :, cols], Window(0, r, size, h))


def peak_rss_mb(cmd: list[str]) -> tuple[float, float]:
    """(peak RSS in MB, wall seconds) of a child process."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        raise SystemExit(f"{' '.join(cmd)} failed")
    return usage.ru_maxrss / 1024, time.perf_counter() - t


def segmentation_model(tmp: Path) -> Path:
    sample = ROOT / "data_samples" / "buildings"
    light = tmp / "light.yaml"
    light.write_text("model_options: {encoder_depth: 3}\n")
    subprocess.run([str(BIN / "geotool"), "--quiet", "train-segmentation", "--images", str(sample / "SN7_mosaic_clipped.tif"),
                    "--labels", str(sample / "SN7_buildings.geojson"), "--task", "buildings", "--config", str(light),
                    "--bands", "1,2,3", "--arch", "Linknet", "--encoder", "mobilenet_v2", "--window", "128", "--block", "128",
                    "--max-steps", "1", "--steps-per-epoch", "1", "--batch-size", "2", "--threads", "2", "--output", str(tmp / "seg")],
                   check=True)
    return tmp / "seg" / "model.ckpt"


def nir_model(tmp: Path) -> Path:
    from bench_nir_speed import make_model

    make_model(tmp / "nir.ckpt", ngf=8, depth=8, window=256)
    return tmp / "nir.ckpt"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="2000,20000")
    ap.add_argument("--only", choices=["predict", "nir"], default=None)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    jobs = {
        "predict": (ROOT / "data_samples/buildings/SN7_mosaic_clipped.tif", segmentation_model,
                    lambda m, r, o: ["predict", m, r, "--output", o, "--no-preview", "--window", "512", "--overlap", "64",
                                     "--batch-size", "4"]),
        "nir": (ROOT / "data_samples/nir/naip_20090818_crop.tif", nir_model,
                lambda m, r, o: ["generate-nir", m, r, "--output", f"{o}/nir.tif", "--window", "512", "--overlap", "64",
                                 "--batch-size", "4"]),
    }
    with tempfile.TemporaryDirectory(prefix="bench_mem_") as d:
        tmp = Path(d)
        for name, (crop, make, command) in jobs.items():
            if args.only and name != args.only:
                continue
            model = make(tmp)
            peaks = {}
            for size in sizes:
                raster, out = tmp / f"{name}_{size}.tif", tmp / f"out_{name}_{size}"
                out.mkdir()
                t = time.perf_counter()
                tile_raster(crop, raster, size)
                built = time.perf_counter() - t
                cmd = [str(BIN / "geotool"), "--quiet", *map(str, command(model, raster, out)), "--threads", str(args.threads)]
                peaks[size], seconds = peak_rss_mb(cmd)
                print(f"{name}: {size} x {size} (built in {built:.0f} s): peak RSS {peaks[size]:.0f} MB, "
                      f"{seconds:.0f} s, {size * size / 1e6 / seconds:.2f} Mpx/s", flush=True)
                raster.unlink()
                for f in out.iterdir():
                    f.unlink()
            lo, hi = min(sizes), max(sizes)
            print(f"{name}: peak memory ratio {hi}^2 / {lo}^2 = {peaks[hi] / peaks[lo]:.3f} (target <= 1.5)", flush=True)


if __name__ == "__main__":
    main()

"""How much a nodata collar changes generated NIR on the valid pixels next to it.

Cuts a 512 x 512 crop of the 2009 NAIP scene, writes it twice (as is, and with a triangular nodata collar
over its top-left corner, about 17% of the pixels) and runs ``generate-nir --tta`` with a trained model on
both. Reported, on the valid pixels within 128 px of the collar (one training window): MAE against the
real NIR with and without the collar (the baseline, same process), their ratio, and the mean change of the
generated NIR. Far from the collar the two runs must agree.

Usage:
    python bench/bench_nir_nodata.py --model /tmp/bench_nir/gan/model.ckpt
    (a model from bench_nir_quality.py; under a minute; figures in BENCHMARKS.md)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_nir_quality import sh  # noqa: E402

SIZE, COLLAR, NEAR = 512, 300, 128  # crop side, collar extent along each axis, "near" band width (px)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True, help="model.ckpt from train-nir (e.g. bench_nir_quality.py's gan)")
    ap.add_argument("--data", default="/work/shared/data/nir")
    ap.add_argument("--col", type=int, default=400, help="left column of the crop in the 2009 scene")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="/tmp/bench_nir_nodata")
    a = ap.parse_args()
    from rasterio.windows import Window

    from geotool.io.raster import RasterSource, write_raster

    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    scene = sorted(Path(a.data).glob("*2009*.tif"))[0]
    with RasterSource(scene) as src:
        window = Window(a.col, 100, SIZE, SIZE)
        data, _ = src.read(window)
        grid = src.grid.window_grid(window)
    yy, xx = np.mgrid[:SIZE, :SIZE]
    collar = yy + xx < COLLAR
    data = np.where((data == 0).all(0), 1, data).astype(np.uint8)  # no accidental nodata in the crop itself
    masked = np.where(collar, 0, data).astype(np.uint8)
    generated = {}
    for name, arr in (("full", data), ("collar", masked)):
        tif = out / f"{name}.tif"
        write_raster(tif, arr, grid, nodata=0, band_names=["red", "green", "blue", "nir"])
        gen = out / f"{name}_nir.tif"
        sh("generate-nir", a.model, tif, "--output", gen, "--threads", a.threads, "--tta")
        with RasterSource(gen) as g:
            generated[name] = g.read()[0][0].astype(float)
    real = data[3].astype(float)
    dist = yy + xx - COLLAR
    near, far = (dist >= 0) & (dist < NEAR), dist >= NEAR
    mae = {k: float(np.abs(v - real)[near].mean() / 255) for k, v in generated.items()}
    change = np.abs(generated["full"] - generated["collar"]) / 255
    print(f"valid pixels within {NEAR} px of the collar: {int(near.sum())}")
    print(f"MAE without collar (baseline): {mae['full']:.4f}   with collar: {mae['collar']:.4f}   "
          f"ratio: {mae['collar'] / mae['full']:.3f}")
    print(f"mean change of generated NIR: near {change[near].mean():.4f}, farther {change[far].mean():.5f} (unit scale)")


if __name__ == "__main__":
    main()

"""Tiled NIR generation cost vs bare generator forward passes, and throughput.

Usage:
    nice -n 10 python bench/bench_nir_speed.py [--size 1024] [--threads 2]

The default generator (pix2pix U-Net, ngf 64, depth 8, window 256, random weights: speed does not
depend on the weights) runs over a synthetic uint8 RGB scene written to a temp folder.
Peak memory (20000^2 vs 2000^2) is measured by bench/bench_tiled_memory.py.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def make_scene(path: Path, size: int) -> None:
    from affine import Affine
    from rasterio.crs import CRS
    from rasterio.windows import Window

    from geotool.io.raster import Grid, RasterWriter

    grid = Grid(CRS.from_epsg(32633), Affine(1, 0, 0, 0, -1, size), size, size)
    rng = np.random.default_rng(0)
    with RasterWriter(path, grid, 3, "uint8", 0) as w:
        for r in range(0, size, 1024):
            h = min(1024, size - r)
            w.write(rng.integers(1, 255, (3, h, size), dtype=np.uint8), Window(0, r, size, h))


def make_model(path: Path, ngf: int, depth: int, window: int) -> None:
    import torch

    from geotool.io.checkpoint import save_checkpoint
    from geotool.models.pix2pix import build_generator
    from geotool.nir.scaling import Scaling
    from geotool.nir.train import TrainNIRConfig

    torch.manual_seed(0)
    arch = dict(generator="pix2pix", in_channels=3, ngf=ngf, depth=depth, dropout=True,
                norm=TrainNIRConfig.model_fields["norm"].default)  # train-nir's default normalisation
    net = build_generator(arch)
    s3, s1 = Scaling("uint8", (0.0,) * 3, (255.0,) * 3, "uint8"), Scaling("uint8", (0.0,), (255.0,), "uint8")
    save_checkpoint(path, {"format": "geotool-nir", "version": 1, "arch": arch, "window": window, "rgb_bands": [1, 2, 3],
                           "nir_band": 4, "rgb_scaling": s3.as_dict(), "nir_scaling": s1.as_dict(), "nir_nodata": 0,
                           "state_dict": net.state_dict()})


def generate(model: Path, scene: Path, out: Path, threads: int) -> dict:
    from geotool.nir.generate import GenerateNIRConfig, run_generate_nir

    return run_generate_nir(GenerateNIRConfig(model=str(model), inputs=[str(scene)], output=str(out), threads=threads)).results[0]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    import torch

    from geotool.nir.checkpoint import load_model

    tmp = Path(tempfile.mkdtemp(prefix="bench_nir_"))
    model, scene = tmp / "default.ckpt", tmp / "scene.tif"
    make_model(model, 64, 8, 256)
    make_scene(scene, a.size)
    torch.set_num_threads(a.threads)
    res = generate(model, scene, tmp / "nir.tif", a.threads)
    # Bare forward passes over the same number of windows, same batch size, no I/O or blending.
    net, _ = load_model(model)
    n, bs = res["windows"], 8
    x = torch.rand(bs, 3, 256, 256)
    t = time.perf_counter()
    with torch.inference_mode():
        for i in range(0, n, bs):
            net(x[: min(bs, n - i)] * 2 - 1)
    bare = time.perf_counter() - t
    mpix = a.size * a.size / 1e6
    print(f"scene {a.size}x{a.size}, {n} windows (256 px, overlap 64), threads {a.threads}")
    print(f"tiled generate-nir: {res['seconds']:.2f} s ({mpix / res['seconds']:.3f} Mpx/s); bare forward passes: {bare:.2f} s")
    print(f"ratio tiled / bare forward = {res['seconds'] / bare:.3f} (target <= 1.3)")


if __name__ == "__main__":
    main()

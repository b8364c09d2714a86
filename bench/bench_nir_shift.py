"""How far the NAIP same-date target is from what the west 70% can teach: RGB -> NIR shift, west vs east.

The quality bench trains on the west 70% of the 2009 scene and scores the east 30% against a per-pixel
gradient-boosting baseline fitted on the west. This script measures, in the same process and against that
baseline's east MAE (ratio 1.0):

- gradient boosting fitted on the west, scored on its own west pixels (in-sample);
- gradient boosting fitted on the east, scored on the east (in-sample: the per-pixel relation there);
- gradient boosting fitted on the east, scored on the west;
- a colour lookup table (mean west NIR per 8-DN RGB cell) scored on the east, and the share of east pixels
  whose colour cell never occurs in the west (a covariate shift would show here; a concept shift, the same
  colour with another NIR, shows as a high lookup MAE with a small unseen share);
- with ``--cnn-oracle``: the L1-only and GAN generators of ``bench_nir_quality.py`` (same settings: the GAN
  with train-nir's default loss, the L1-only one with ``--gan-weight 0 --ssim-weight 0``) trained
  on a mirrored copy of the scene, whose west 70% holds the whole original east 30%, then generated on the
  original scene with ``--tta`` and scored on the east: what the generators reach on the east when they
  have trained on it.

Usage:
    nice -n 5 python bench/bench_nir_shift.py --cnn-oracle --threads 1 --out /tmp/bench_nir_shift
    (about 16 minutes on 2 cores with --cnn-oracle, under a minute without; figures in BENCHMARKS.md)
"""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_nir_quality import LOSSES, generator_args, sh  # noqa: E402

SCENE = "m_4709963_se_14_1_20090818.tif"


def gb_mae(seed: int, fit_rgb, fit_nir, test_rgb, test_nir) -> float:
    from geotool.nir.baselines import GBBaseline

    model = GBBaseline(seed=seed).fit(fit_rgb.reshape(3, -1), fit_nir.ravel())
    return float(np.abs(model.predict(test_rgb) - test_nir).mean())


def lookup(west_rgb, west_nir, east_rgb, east_nir, cell: int = 8) -> tuple[float, float]:
    """(share of east pixels whose RGB cell is absent from the west, lookup-table MAE on the others)."""
    def codes(rgb):
        q = (rgb * 255).round().astype(np.int64) // cell
        return (q[0] * 256 + q[1]) * 256 + q[2]

    cw, ce = codes(west_rgb).ravel(), codes(east_rgb).ravel()
    cells, inverse = np.unique(cw, return_inverse=True)
    mean = np.bincount(inverse, weights=west_nir.ravel()) / np.bincount(inverse)
    pos = np.clip(np.searchsorted(cells, ce), 0, len(cells) - 1)
    seen = cells[pos] == ce
    return float(1 - seen.mean()), float(np.abs(mean[pos[seen]] - east_nir.ravel()[seen]).mean())


def cnn_oracle(a, scene: Path, out: Path) -> dict[str, float]:
    """Train both generators on the mirrored scene (its west 70% = the original east 30% and more)."""
    from geotool.io.raster import read_stack, write_raster

    mirrored = out / "mirrored.tif"  # same grid; only the pixel columns are reversed
    stack = read_stack(scene)
    write_raster(mirrored, stack.data[:, :, ::-1], stack.grid, nodata=stack.nodata[0])
    common = generator_args(a.steps, a.threads, a.seed, a.lr)

    def one(name: str, loss: list) -> tuple[str, float]:
        run = out / name
        sh("train-nir", mirrored, "--output", run, *common, *loss)
        sh("generate-nir", run / "model.ckpt", scene, "--output", out / f"{name}.tif", "--threads", a.threads, "--tta")
        sh("evaluate-nir", out / f"{name}.tif", scene, "--region", "east", "--output", out / f"{name}.json")
        return name, json.loads((out / f"{name}.json").read_text())["model"]["mae"]

    with ThreadPoolExecutor(2) as pool:  # one training per core
        return dict(pool.map(lambda job: one(*job), LOSSES.items()))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="/work/shared/data/nir")
    ap.add_argument("--west-fraction", type=float, default=0.7)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cnn-oracle", action="store_true")
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="/tmp/bench_nir_shift")
    a = ap.parse_args()
    from geotool.io.raster import read_stack

    scene = Path(a.data) / SCENE
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    data = read_stack(scene).data.astype(np.float32) / 255  # NAIP uint8 -> unit scale (DN/255)
    split = int(round(data.shape[2] * a.west_fraction))
    west, east = data[:, :, :split], data[:, :, split:]
    base = gb_mae(a.seed, west[:3], west[3], east[:3], east[3])
    figures = {
        "gb: fit west, score east (the baseline)": base,
        "gb: fit west, score west (in-sample)": gb_mae(a.seed, west[:3], west[3], west[:3], west[3]),
        "gb: fit east, score east (in-sample)": gb_mae(a.seed, east[:3], east[3], east[:3], east[3]),
        "gb: fit east, score west": gb_mae(a.seed, east[:3], east[3], west[:3], west[3]),
    }
    unseen, table = lookup(west[:3], west[3], east[:3], east[3])
    figures["lookup: west mean NIR per 8-DN colour cell, score east"] = table
    if a.cnn_oracle:
        for name, mae in cnn_oracle(a, scene, out).items():
            figures[f"{name} generator trained on the east (mirrored scene), score east, TTA"] = mae
    print(f"{SCENE}: west {split} columns, east {data.shape[2] - split}; MAE in DN/255")
    print(f"east pixels whose 8-DN colour cell never occurs in the west: {unseen:.4f}")
    print("| fit -> score | MAE | / baseline |\n|---|---|---|")
    for name, mae in figures.items():
        print(f"| {name} | {mae:.4f} | {mae / base:.3f} |")
    print(f"target of issue 4: GAN east MAE <= 0.5 x baseline = {0.5 * base:.4f}")
    (out / "summary.json").write_text(json.dumps({"unseen_colour_share": unseen, "mae": figures}, indent=2))


if __name__ == "__main__":
    main()

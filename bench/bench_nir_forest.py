"""Downstream check of arXiv:2106.07020 at small scale: forest segmentation with RGB, RGB + generated NIR
and RGB + real NIR on the Sentinel-2 scenes of ``/work/shared/data/forest`` (RGB = B04,B03,B02, NIR = B08).

1. ``train-nir`` on the west 65% of the July scene (float reflectance), step budget ``--nir-steps``.
2. ``generate-nir`` for the August scene.
3. A small fully convolutional segmenter (same net, same steps for every input set) is trained on the west
   65% of the July scene (real NIR for the "real" set, generated NIR of July for the "generated" set) and
   scored on the east 35% of the August scene against ``forest_mask.tif``: F1 of the forest class,
   mean and spread over ``--seeds``.

Usage:
    nice -n 10 python bench/bench_nir_forest.py [--data /work/shared/data/forest] [--seeds 0,1,2] \
        [--nir-seeds 0,1,2] [--train-args "--harmonise moments"]
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

GEOTOOL = str(Path(sys.executable).with_name("geotool"))


def sh(*args) -> None:
    subprocess.run([GEOTOOL, "-q", *map(str, args)], check=True)


def segmenter(cin: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(cin, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 16, 3, padding=2, dilation=2), nn.ReLU(),
        nn.Conv2d(16, 16, 3, padding=4, dilation=4), nn.ReLU(), nn.Conv2d(16, 1, 1))


def f1(pred: np.ndarray, truth: np.ndarray) -> float:
    tp = float((pred & truth).sum())
    return 2 * tp / max(float(pred.sum() + truth.sum()), 1.0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="/work/shared/data/forest")
    ap.add_argument("--out", default="/tmp/bench_nir_forest")
    ap.add_argument("--nir-steps", type=int, default=300)
    ap.add_argument("--seg-steps", type=int, default=300)
    ap.add_argument("--seeds", default="0,1,2", help="segmenter seeds")
    ap.add_argument("--nir-seeds", default="0", help="generator seeds (each trains its own train-nir run)")
    ap.add_argument("--train-args", default="", help="extra train-nir flags, e.g. '--harmonise moments'")
    a = ap.parse_args()
    from geotool.io.raster import read_stack

    torch.set_num_threads(1)
    data, out = Path(a.data), Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    july, aug = data / "S2L1C_2015-07-11_13band.tif", data / "S2L1C_2015-08-30_13band.tif"
    nir_seeds = [int(s) for s in a.nir_seeds.split(",")]
    seg_seeds = [int(s) for s in a.seeds.split(",")]
    print(f"conditions: torch threads 1, train-nir steps {a.nir_steps}, extra train-nir flags {a.train_args!r}, "
          f"generator seeds {nir_seeds}, segmenter seeds {seg_seeds}, segmenter steps {a.seg_steps}, "
          f"load average {os.getloadavg()[0]:.2f}")
    generated = {}  # generator seed -> {"july": NIR, "aug": NIR}
    for nir_seed in nir_seeds:
        run = out / f"nir_run_{nir_seed}"
        sh("train-nir", july, "--rgb-bands", "4,3,2", "--nir-band", 8, "--scaling", "float", "--val-fraction", 0.35,
           "--window", 32, "--depth", 3, "--ngf", 16, "--ndf", 16, "--batch-size", 8, "--no-dropout",
           "--max-steps", a.nir_steps, "--steps-per-epoch", max(1, a.nir_steps // 3), "--accelerator", "cpu",
           "--threads", 1, "--seed", nir_seed, *shlex.split(a.train_args), "--output", run)
        for name, scene in (("july", july), ("aug", aug)):
            sh("generate-nir", run / "model.ckpt", scene, "--rgb-bands", "4,3,2", "--threads", 1,
               "--output", out / f"{name}_nir_{nir_seed}.tif")
        generated[nir_seed] = {name: read_stack(out / f"{name}_nir_{nir_seed}.tif").data.astype(np.float32)
                               for name in ("july", "aug")}
    mask = read_stack(data / "forest_mask.tif").data[0] == 1
    scenes = {name: read_stack(scene, bands=[4, 3, 2, 8]).data.astype(np.float32)
              for name, scene in (("july", july), ("aug", aug))}
    split = int(round(mask.shape[1] * 0.65))

    def score(inputs: dict, seed: int) -> float:
        """Train the segmenter on July's west, score August's east."""
        torch.manual_seed(seed)
        x_tr = torch.from_numpy(inputs["july"][:, :, :split])[None]
        y_tr = torch.from_numpy(mask[:, :split].astype(np.float32))[None, None]
        mean, std = x_tr.mean((0, 2, 3), keepdim=True), x_tr.std((0, 2, 3), keepdim=True) + 1e-6
        net = segmenter(x_tr.shape[1])
        opt = torch.optim.Adam(net.parameters(), 1e-2)
        for _ in range(a.seg_steps):
            opt.zero_grad()
            loss = nn.functional.binary_cross_entropy_with_logits(net((x_tr - mean) / std), y_tr)
            loss.backward()
            opt.step()
        with torch.no_grad():
            x_te = torch.from_numpy(inputs["aug"])[None]
            pred = (net((x_te - mean) / std)[0, 0] > 0).numpy()[:, split:]
        return f1(pred, mask[:, split:])

    results = {
        "RGB": [score({k: v[:3] for k, v in scenes.items()}, s) for s in seg_seeds],
        "RGB+generated NIR": [score({k: np.concatenate([v[:3], generated[g][k]]) for k, v in scenes.items()}, s)
                              for g in nir_seeds for s in seg_seeds],
        "RGB+real NIR": [score(scenes, s) for s in seg_seeds],
    }
    for key, scores in results.items():
        runs = "generator x segmenter seeds" if key == "RGB+generated NIR" else "segmenter seeds"
        print(f"{key}: forest F1 on August east 35% = {np.mean(scores):.4f} +- {np.std(scores):.4f} "
              f"({len(scores)} runs over {runs}: {[round(x, 4) for x in scores]})")
    base = np.mean(results["RGB"])
    for key in ("RGB+generated NIR", "RGB+real NIR"):
        print(f"{key} F1 / RGB F1 = {np.mean(results[key]) / base:.4f}")


if __name__ == "__main__":
    main()

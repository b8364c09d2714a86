"""NAIP RGB -> NIR quality: GAN vs L1-only generator vs per-pixel linear and gradient-boosting baselines.

Train on the west 70% of one date (step budget), evaluate on the east 30% of the same date and on the
whole other date. Baselines are fitted on the same west-70% pixels in the same run. The generators are
exported from their final step (``--export last``): train-nir's validation windows lie in the east 30%,
so choosing the best epoch there would select the model on the evaluation region.

Usage:
    nice -n 5 python bench/bench_nir_quality.py --steps 2000 --threads 1 --lr 1e-3 --tta --out /tmp/bench_nir2000
    (about 20 minutes on one core; figures in BENCHMARKS.md)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

GEOTOOL = str(Path(sys.executable).with_name("geotool"))


LOSSES = {"gan": ["--gan-weight", 1], "l1_only": ["--gan-weight", 0, "--ssim-weight", 0]}  # train-nir flags per generator


def sh(*args) -> None:
    subprocess.run([GEOTOOL, "-q", *map(str, args)], check=True)


def generator_args(steps: int, threads: int, seed: int, lr: float, lr_schedule: str = "linear-decay",
                   window: int = 128, ngf: int = 32, depth: int = 6) -> list:
    """train-nir flags shared by this bench's generators (``LOSSES`` adds each one's loss), exported from
    their last step."""
    return ["--window", window, "--ngf", ngf, "--ndf", ngf, "--depth", depth, "--batch-size", 4,
            "--max-steps", steps, "--steps-per-epoch", max(1, steps // 4), "--accelerator", "cpu",
            "--threads", threads, "--seed", seed, "--no-dropout", "--lr", lr, "--lr-schedule", lr_schedule,
            "--export", "last"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="/work/shared/data/nir")
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--window", type=int, default=128)
    ap.add_argument("--ngf", type=int, default=32)
    ap.add_argument("--depth", type=int, default=6)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--lr-schedule", default="linear-decay")
    ap.add_argument("--tta", action="store_true", help="generate with flip averaging (4 passes per window)")
    ap.add_argument("--models", default="gan,l1_only", help="generators to train: gan, l1_only or both")
    ap.add_argument("--train-args", default="", help="extra train-nir flags for both generators, e.g. '--gan-mode lsgan'")
    ap.add_argument("--out", default="/tmp/bench_nir")
    a = ap.parse_args()
    data = Path(a.data)
    d1, d2 = sorted(data.glob("*2009*.tif"))[0], sorted(data.glob("*2018*.tif"))[0]
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    common = [*generator_args(a.steps, a.threads, a.seed, a.lr, a.lr_schedule, a.window, a.ngf, a.depth),
              *a.train_args.split()]
    rows = {}
    models = a.models.split(",")
    for name, extra in LOSSES.items():
        if name not in models:
            continue
        t = time.perf_counter()
        sh("train-nir", d1, "--output", out / name, *common, *extra)
        train_s = time.perf_counter() - t
        for tag, scene, region in (("same_date_east", d1, "east"), ("other_date", d2, "all")):
            gen = out / f"{name}_{tag}.tif"
            sh("generate-nir", out / name / "model.ckpt", scene, "--output", gen, "--threads", a.threads,
               "--tta" if a.tta else "--no-tta")
            metrics = out / f"{name}_{tag}.json"
            sh("evaluate-nir", gen, scene, "--output", metrics, "--region", region, "--baseline", "linear,gb",
               "--baseline-train", d1, "--seed", a.seed, "--plot", out / f"{name}_{tag}.png")
            res = json.loads(metrics.read_text())
            rows.setdefault(tag, {})[name] = res["model"]
            rows[tag]["linear"], rows[tag]["gb"] = res["linear"], res["gb"]
            rows[tag].setdefault("seam", {})[name] = res.get("seam_check")
        rows.setdefault("train_seconds", {})[name] = round(train_s, 1)
    keys = ["mae", "rmse", "bias", "pearson_r", "psnr_db", "ssim", "sam_deg", "ndvi_mae", "ndvi_iou", "ndvi_f1"]
    for tag in ("same_date_east", "other_date"):
        print(f"\n## {tag} (unit scale = DN/255)")
        print("| model | " + " | ".join(keys) + " |")
        print("|---" * (len(keys) + 1) + "|")
        for name in (*models, "linear", "gb"):
            print(f"| {name} | " + " | ".join(f"{rows[tag][name][k]:.4f}" for k in keys) + " |")
        for name in models:
            print(f"{name} MAE / gradient-boosting MAE = {rows[tag][name]['mae'] / rows[tag]['gb']['mae']:.3f}; "
                  f"SSIM {rows[tag][name]['ssim']:.3f} vs {rows[tag]['gb']['ssim']:.3f}")
        print("seam check (border/interior MAE):", {k: round(v["ratio"], 3) for k, v in rows[tag]["seam"].items() if v})
    print("train seconds:", rows["train_seconds"])
    (out / "summary.json").write_text(json.dumps(rows, indent=1, default=float))


if __name__ == "__main__":
    main()

"""Quality on real data: segmentation model vs a per-pixel random forest on the same spatial block split.

Usage:
    nice -n 10 python bench/bench_segmentation_quality.py --task buildings --bands 1,2,3 \
        --image ../shared/data/buildings/SN7_mosaic_clipped.tif --labels ../shared/data/buildings/SN7_Buildings.geojson \
        --max-steps 400 --window 64 --seeds 0,1,2 --out /tmp/segq_buildings
    nice -n 10 python bench/bench_segmentation_quality.py --task forest \
        --image ../shared/data/forest/S2L1C_2015-07-11_13band.tif --labels ../shared/data/forest/forest_mask.tif \
        --max-steps 400 --window 32 --seeds 0,1,2 --out /tmp/segq_forest

One split (``--split-seed``) for every run. Each seed trains the model (the task preset with the flags
above) and a random forest (100 trees, up to 50 000 training-block pixels, raw bands). Foreground IoU/F1
are computed on the held-out blocks only, printed per seed and as mean +- sd, with the ratio model / RF
(the baseline, same process). A PNG shows image | model | random forest | reference for the first seed.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from heldout import scores, train_and_score  # noqa: E402


def random_forest(scene, ignore_index: int, seed: int) -> tuple[np.ndarray, float]:
    """Per-pixel RF trained on the training blocks; returns (class map, seconds)."""
    from sklearn.ensemble import RandomForestClassifier

    train = scene.valid & scene.train_region & (scene.target != ignore_index)
    rng = np.random.default_rng(seed)
    idx = np.flatnonzero(train.ravel())
    idx = rng.choice(idx, min(len(idx), 50000), replace=False)
    X = scene.image.reshape(scene.image.shape[0], -1).T
    t = time.perf_counter()
    rf = RandomForestClassifier(n_estimators=100, n_jobs=2, random_state=seed).fit(X[idx], scene.target.ravel()[idx])
    return rf.predict(X).reshape(scene.target.shape), time.perf_counter() - t


def figure(scene, pred, rf_pred, path: Path, rgb_bands: list[int]) -> None:
    from geotool.io.figures import new_figure, save_figure

    img = scene.image[rgb_bands] if scene.image.shape[0] >= 3 else scene.image[:1].repeat(3, 0)
    valid, val, ref = scene.valid, scene.val_region, scene.target
    lo, hi = np.percentile(img[:, valid], 2), np.percentile(img[:, valid], 98)
    rgb = np.clip((img - lo) / (hi - lo), 0, 1).transpose(1, 2, 0)
    fig, axes = new_figure(1, 4, figsize=(16, 4.5))
    for ax, (title, m) in zip(axes, [("image (held-out blocks dimmed)", None), ("model", pred), ("random forest", rf_pred),
                                     ("reference", ref)]):
        ax.imshow(rgb * np.where(val, 0.6, 1.0)[..., None])
        if m is not None:
            ax.imshow(np.ma.masked_where(m != 1, m), alpha=0.55, cmap="autumn", interpolation="nearest")
        ax.set_title(title)
        ax.set_axis_off()
    save_figure(fig, path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", default="buildings")
    ap.add_argument("--image", default="../shared/data/buildings/SN7_mosaic_clipped.tif")
    ap.add_argument("--labels", default="../shared/data/buildings/SN7_Buildings.geojson")
    ap.add_argument("--bands", default=None, help="e.g. 1,2,3 (default: the preset's)")
    ap.add_argument("--rgb", default="0,1,2", help="0-based positions of R,G,B among the bands, for the PNG")
    ap.add_argument("--max-steps", type=int, default=400)
    ap.add_argument("--window", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--split-seed", type=int, default=0)
    ap.add_argument("--lr-schedule", default=None, help="constant, linear-decay or cosine (default: the preset's)")
    ap.add_argument("--out", default="/tmp/segq")
    args = ap.parse_args()
    import torch

    from geotool.config import load_config
    from geotool.segmentation.config import SegmentationConfig

    torch.set_num_threads(2)
    out = Path(args.out)
    rows = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        cfg = load_config(SegmentationConfig, None, {
            "images": [args.image], "labels": [args.labels], "output": str(out / f"run_s{seed}"), "seed": seed,
            "split_seed": args.split_seed, "max_steps": args.max_steps, "steps_per_epoch": max(1, args.max_steps // 4),
            "window": args.window, "block": 2 * args.window, "batch_size": args.batch_size, "threads": 2,
            "accelerator": "cpu", "bands": [int(b) for b in args.bands.split(",")] if args.bands else None,
            "lr_schedule": args.lr_schedule,
        }, preset=args.task)
        r = train_and_score(cfg)
        scene = r["scenes"][0]
        test = scene.valid & scene.val_region & (scene.target != cfg.ignore_index)
        rf_pred, rf_s = random_forest(scene, cfg.ignore_index, seed)
        rf_iou, rf_f1 = scores(rf_pred[test], scene.target[test])
        rows.append((r["iou"], r["f1"], rf_iou, rf_f1))
        print(f"seed {seed}: model ({cfg.arch} {cfg.encoder}, {r['steps']} steps, {r['train_s']:.0f} s) IoU {r['iou']:.3f} "
              f"F1 {r['f1']:.3f} | random forest ({rf_s:.0f} s) IoU {rf_iou:.3f} F1 {rf_f1:.3f} | "
              f"held-out pixels {r['heldout_pixels']}", flush=True)
        if len(rows) == 1:
            png = out / f"quality_{args.task}.png"
            figure(scene, r["predictions"][0], rf_pred, png, [int(b) for b in args.rgb.split(",")])
            print(f"figure: {png}")
    a = np.array(rows)
    m, s = a.mean(0), a.std(0)
    print(f"{args.task}: {Path(args.image).name}, {len(rows)} seed(s), split seed {args.split_seed}, "
          f"learning rate {cfg.lr_schedule}")
    print(f"model:         IoU {m[0]:.3f} +- {s[0]:.3f}  F1 {m[1]:.3f} +- {s[1]:.3f}")
    print(f"random forest: IoU {m[2]:.3f} +- {s[2]:.3f}  F1 {m[3]:.3f} +- {s[3]:.3f}")
    print(f"ratio model / RF: IoU {m[0] / max(m[2], 1e-9):.2f}, F1 {m[1] / max(m[3], 1e-9):.2f}")


if __name__ == "__main__":
    main()

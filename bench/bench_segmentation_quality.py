"""Quality on real data: segmentation model vs a per-pixel random forest on the same spatial block split.

Usage:
    nice -n 10 python bench/bench_segmentation_quality.py --task buildings \
        --image /work/shared/data/buildings/SN7_mosaic_clipped.tif --labels /work/shared/data/buildings/SN7_Buildings.geojson \
        --max-steps 300 --window 128 --out /tmp/segq_buildings
    nice -n 10 python bench/bench_segmentation_quality.py --task forest \
        --image /work/shared/data/forest/S2L1C_2015-07-11_13band.tif --labels /work/shared/data/forest/forest_mask.tif \
        --max-steps 300 --window 64 --out /tmp/segq_forest

Both models see the same training blocks; IoU/F1 of the foreground class are computed on the held-out
(validation) blocks only; a PNG shows image | model | random forest | reference.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np


def scores(pred: np.ndarray, ref: np.ndarray) -> tuple[float, float]:
    tp = float(((pred == 1) & (ref == 1)).sum())
    fp = float(((pred == 1) & (ref == 0)).sum())
    fn = float(((pred == 0) & (ref == 1)).sum())
    return tp / max(tp + fp + fn, 1), 2 * tp / max(2 * tp + fp + fn, 1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--task", default="buildings")
    ap.add_argument("--image", default="/work/shared/data/buildings/SN7_mosaic_clipped.tif")
    ap.add_argument("--labels", default="/work/shared/data/buildings/SN7_Buildings.geojson")
    ap.add_argument("--max-steps", type=int, default=300)
    ap.add_argument("--window", type=int, default=128)
    ap.add_argument("--out", default="/tmp/segq")
    args = ap.parse_args()
    import torch
    from sklearn.ensemble import RandomForestClassifier

    from geotool.config import load_config
    from geotool.io.figures import new_figure, save_figure
    from geotool.segmentation.config import SegmentationConfig
    from geotool.segmentation.data import load_scenes
    from geotool.segmentation.predict import PredictConfig, predict_raster
    from geotool.segmentation.train import load_model, run_train_segmentation
    from geotool.io.raster import RasterSource

    torch.set_num_threads(2)
    out = Path(args.out)
    cfg = load_config(SegmentationConfig, None, {"images": [args.image], "labels": [args.labels], "output": str(out / "run"),
                                                 "max_steps": args.max_steps, "steps_per_epoch": max(1, args.max_steps // 5),
                                                 "window": args.window, "block": 2 * args.window, "threads": 2}, preset=args.task)
    t = time.perf_counter()
    summary = run_train_segmentation(cfg)
    train_s = time.perf_counter() - t
    net, payload = load_model(out / "run/model.ckpt")
    pcfg = PredictConfig(model=str(out / "run/model.ckpt"), rasters=[args.image], output=str(out / "pred"), preview=False)
    (out / "pred").mkdir(parents=True, exist_ok=True)
    res = predict_raster(net, payload, args.image, out / "pred", pcfg, "cpu")
    with RasterSource(res["classes"]) as src:
        pred = src.read()[0][0]
    scene = load_scenes(cfg)[0][0]  # same seed -> same split as training
    ref, valid, val = scene.target, scene.valid, scene.val_region
    test = valid & val & (ref != cfg.ignore_index)
    train = valid & ~val & (ref != cfg.ignore_index)
    rng = np.random.default_rng(0)
    idx = np.flatnonzero(train.ravel())
    idx = rng.choice(idx, min(len(idx), 50000), replace=False)
    X = scene.image.reshape(scene.image.shape[0], -1).T
    t = time.perf_counter()
    rf = RandomForestClassifier(n_estimators=100, n_jobs=2, random_state=0).fit(X[idx], ref.ravel()[idx])
    rf_pred = rf.predict(X).reshape(ref.shape)
    rf_s = time.perf_counter() - t
    m_iou, m_f1 = scores(pred[test], ref[test])
    r_iou, r_f1 = scores(rf_pred[test], ref[test])
    print(f"{args.task}: {Path(args.image).name}, held-out pixels {int(test.sum())}")
    print(f"model  (Unet {payload['arch']['encoder']}, {summary['steps']} steps, {train_s:.0f} s wall): IoU {m_iou:.3f} F1 {m_f1:.3f}")
    print(f"random forest (per pixel, {len(idx)} train pixels, {rf_s:.0f} s): IoU {r_iou:.3f} F1 {r_f1:.3f}")
    print(f"ratio model/RF IoU: {m_iou / max(r_iou, 1e-9):.2f}")
    img = scene.image[:3] if scene.image.shape[0] >= 3 else scene.image[:1].repeat(3, 0)
    lo, hi = np.percentile(img[:, valid], 2), np.percentile(img[:, valid], 98)
    rgb = np.clip((img - lo) / (hi - lo), 0, 1).transpose(1, 2, 0)
    fig, axes = new_figure(1, 4, figsize=(16, 4.5))
    for ax, (title, m) in zip(axes, [("image (val blocks dimmed)", None), ("model", pred), ("random forest", rf_pred), ("reference", ref)]):
        ax.imshow(rgb * np.where(val, 0.6, 1.0)[..., None])
        if m is not None:
            ax.imshow(np.ma.masked_where(m != 1, m), alpha=0.55, cmap="autumn", interpolation="nearest")
        ax.set_title(title)
        ax.set_axis_off()
    save_figure(fig, out / f"quality_{args.task}.png")
    print(f"figure: {out / f'quality_{args.task}.png'}")


if __name__ == "__main__":
    main()

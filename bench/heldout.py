"""Shared by the segmentation and OBA benches: train one run, predict the whole scene with the tiling
engine (as ``geotool predict`` does) and score the foreground class on the held-out blocks only."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np


def scores(pred: np.ndarray, ref: np.ndarray) -> tuple[float, float]:
    """Foreground (class 1) IoU and F1 of two label vectors, as ``geotool evaluate`` computes them."""
    from geotool.segmentation.evaluate import add_confusion, confusion_metrics

    conf = add_confusion(np.zeros((2, 2), np.int64), ref, pred)
    fg = confusion_metrics(conf, [str(i) for i in range(len(conf))])["per_class"]["1"]
    return fg["iou"] or 0.0, fg["f1"] or 0.0


def train_and_score(cfg, sample_transform=None) -> dict:
    """Train ``cfg`` (run folder ``cfg.output``), predict every scene and score its held-out blocks.

    Returns a dict with ``iou``, ``f1`` (pooled over the held-out pixels of every scene), ``train_s``
    (wall seconds of training), ``steps``, ``heldout_pixels`` and per-scene ``predictions`` (class arrays).
    """
    from geotool.io.raster import RasterSource
    from geotool.segmentation.data import load_scenes
    from geotool.segmentation.predict import PredictConfig, predict_raster
    from geotool.segmentation.checkpoint import load_model
    from geotool.segmentation.train import run_train_segmentation

    out = Path(cfg.output)
    t = time.perf_counter()
    summary = run_train_segmentation(cfg, sample_transform)
    train_s = time.perf_counter() - t
    net, payload = load_model(out / "model.ckpt")
    pred_dir = out / "pred"
    pred_dir.mkdir(parents=True, exist_ok=True)
    scenes = load_scenes(cfg)[0]  # the same split as training (seeded)
    preds, refs = [], []
    predictions = []
    for scene in scenes:
        pcfg = PredictConfig(model=str(out / "model.ckpt"), rasters=[scene.paths[0]], output=str(pred_dir), preview=False)
        res = predict_raster(net, payload, scene.paths[0], pred_dir, pcfg, "cpu")
        with RasterSource(res["classes"]) as src:
            pred = src.read()[0][0]
        test = scene.valid & scene.val_region & (scene.target != cfg.ignore_index)
        preds.append(pred[test])
        refs.append(scene.target[test])
        predictions.append(pred)
    iou, f1 = scores(np.concatenate(preds), np.concatenate(refs))
    return {"iou": iou, "f1": f1, "train_s": train_s, "steps": summary.get("steps"),
            "heldout_pixels": int(sum(len(r) for r in refs)), "predictions": predictions, "scenes": scenes}

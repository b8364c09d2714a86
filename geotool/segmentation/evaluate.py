"""``evaluate``: a class raster against a reference raster or vector labels.

Per-class IoU, F1, precision, recall, macro and micro averages and the confusion matrix, accumulated block
by block; optionally object-level F1: connected foreground regions (4-connected, the same regions
``vectorize`` turns into polygons) matched one-to-one at IoU >= 0.5.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import numpy as np
from pydantic import Field

from geotool.config import GeotoolConfig, write_sidecar
from geotool.errors import ConfigError, RasterMismatchError


class EvaluateConfig(GeotoolConfig):
    """Settings of ``geotool evaluate``."""

    prediction: str = Field(..., description="Class GeoTIFF from predict (uint8, 255 = nodata).")
    reference: str = Field(..., description="Reference class raster on the same grid, or vector labels.")
    output: str = Field(..., description="metrics.json (a CSV with the per-class table is written beside it).")
    class_attribute: Optional[str] = Field(None, description="Vector column with the class (none = every polygon is class 1).")
    class_map: dict[str, int] = Field(default_factory=dict, description="Attribute value -> class id.")
    class_names: Optional[list[str]] = Field(None, description="Class names (default: from the prediction's tags).")
    ignore_index: int = Field(255, description="Reference value treated as nodata.")
    objects: Optional[bool] = Field(None, description="Object-level F1 at IoU >= 0.5 (default: when there are 2 classes).")
    object_iou: float = Field(0.5, description="IoU threshold for an object match.")


def confusion_metrics(conf: np.ndarray, names: list[str]) -> dict[str, Any]:
    """Per-class and averaged IoU / F1 / precision / recall from a ``(K, K)`` confusion (rows = reference)."""
    conf = conf.astype(np.float64)
    tp = np.diag(conf)
    fp = conf.sum(0) - tp
    fn = conf.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(tp + fp + fn > 0, tp / (tp + fp + fn), np.nan)
        prec = np.where(tp + fp > 0, tp / (tp + fp), np.nan)
        rec = np.where(tp + fn > 0, tp / (tp + fn), np.nan)
        f1 = np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), np.nan)
    per_class = {n: {"iou": _f(iou[i]), "f1": _f(f1[i]), "precision": _f(prec[i]), "recall": _f(rec[i]),
                     "support": int(conf[i].sum())} for i, n in enumerate(names)}
    T, FP, FN = tp.sum(), fp.sum(), fn.sum()
    micro = {"iou": _f(T / (T + FP + FN)) if T + FP + FN else None, "f1": _f(2 * T / (2 * T + FP + FN)) if T else 0.0,
             "precision": _f(T / (T + FP)) if T + FP else None, "recall": _f(T / (T + FN)) if T + FN else None}
    macro = {k: _f(np.nanmean(v)) if np.isfinite(v).any() else None for k, v in
             (("iou", iou), ("f1", f1), ("precision", prec), ("recall", rec))}
    return {"per_class": per_class, "macro": macro, "micro": micro, "accuracy": _f(T / conf.sum()) if conf.sum() else None,
            "confusion_matrix": conf.astype(np.int64).tolist(), "pixels": int(conf.sum())}


def _f(x) -> float | None:
    x = float(x)
    return None if np.isnan(x) else round(x, 6)


def object_f1(pred_fg: np.ndarray, ref_fg: np.ndarray, threshold: float = 0.5) -> dict[str, Any]:
    """Object-level precision/recall/F1: 4-connected regions matched one-to-one at IoU >= ``threshold``."""
    from scipy import ndimage

    structure = ndimage.generate_binary_structure(2, 1)
    lp, n_p = ndimage.label(pred_fg, structure)
    lr, n_r = ndimage.label(ref_fg, structure)
    both = (lp > 0) & (lr > 0)
    pairs = lp[both].astype(np.int64) * (n_r + 1) + lr[both]
    uniq, inter = np.unique(pairs, return_counts=True)
    pi, ri = uniq // (n_r + 1), uniq % (n_r + 1)
    area_p = np.bincount(lp.ravel(), minlength=n_p + 1)
    area_r = np.bincount(lr.ravel(), minlength=n_r + 1)
    iou = inter / (area_p[pi] + area_r[ri] - inter)
    order = np.argsort(-iou)
    used_p, used_r, tp = set(), set(), 0
    for k in order:
        if iou[k] < threshold:
            break
        if pi[k] in used_p or ri[k] in used_r:
            continue
        used_p.add(pi[k]); used_r.add(ri[k]); tp += 1
    prec = tp / n_p if n_p else None
    rec = tp / n_r if n_r else None
    f1 = 2 * tp / (n_p + n_r) if n_p + n_r else None
    return {"iou_threshold": threshold, "predicted_objects": int(n_p), "reference_objects": int(n_r),
            "matched": int(tp), "precision": prec, "recall": rec, "f1": f1}


def run_evaluate(cfg: EvaluateConfig) -> dict[str, Any]:
    """Compute the metrics, write JSON + CSV, return the JSON record."""
    import pandas as pd

    from geotool.io.files import require_file, write_json, write_table
    from geotool.io.raster import RasterSource, iter_block_windows, read_tags
    from geotool.io.vector import rasterize, read_vector
    from geotool.segmentation.data import is_vector, label_values

    out = Path(cfg.output)
    if out.suffix.lower() != ".json":
        raise ConfigError(f"--output {out}: give a .json path (a .csv is written beside it)")
    require_file(cfg.prediction, "prediction raster")
    require_file(cfg.reference, "reference file")
    names = cfg.class_names or [n for n in read_tags(cfg.prediction).get("classes", "").split(",") if n]
    with RasterSource(cfg.prediction) as pred_src:
        grid = pred_src.grid
        pred_all, pvalid_all = pred_src.read()
    pred_all = pred_all[0].astype(np.int64)
    pvalid_all &= pred_all != 255
    if is_vector(cfg.reference):
        gdf = read_vector(cfg.reference, target=grid, raster_name=cfg.prediction)
        gdf, values = label_values(gdf, cfg.reference, cfg.class_attribute, cfg.class_map)
        ref_all = rasterize(gdf, grid, values=values, fill=0, dtype="int32").astype(np.int64)
        rvalid_all = np.ones_like(pvalid_all)
    else:
        with RasterSource(cfg.reference) as ref_src:
            if not ref_src.grid.same_as(grid):
                raise RasterMismatchError(f"{cfg.reference} is not on the grid of {cfg.prediction} "
                                          f"({'; '.join(ref_src.grid.differences(grid))}); resample it first")
            ref_all, rvalid_all = ref_src.read()
        ref_all = ref_all[0].astype(np.int64)
        rvalid_all &= ref_all != cfg.ignore_index
    keep = pvalid_all & rvalid_all
    k = int(max(pred_all[keep].max(initial=0), ref_all[keep].max(initial=0))) + 1
    k = max(k, len(names), 2)
    names = (names + [f"class_{i}" for i in range(len(names), k)])[:k]
    conf = np.zeros((k, k), np.int64)
    for w in iter_block_windows(grid, 1024):
        sl = (slice(w.row_off, w.row_off + w.height), slice(w.col_off, w.col_off + w.width))
        m = keep[sl]
        conf += np.bincount(ref_all[sl][m] * k + pred_all[sl][m], minlength=k * k).reshape(k, k)
    record = {"prediction": cfg.prediction, "reference": cfg.reference, "classes": names, **confusion_metrics(conf, names)}
    if cfg.objects if cfg.objects is not None else k == 2:
        record["objects"] = object_f1((pred_all > 0) & keep, (ref_all > 0) & keep, cfg.object_iou)
    rows = [{"class": n, **v} for n, v in record["per_class"].items()]
    rows += [{"class": "macro", **record["macro"]}, {"class": "micro", **record["micro"]}]
    write_json(out, record)
    write_table(out.with_suffix(".csv"), pd.DataFrame(rows))
    write_sidecar(out, "evaluate", cfg, inputs=[cfg.prediction, cfg.reference])
    return record


def format_table(record: dict[str, Any]) -> str:
    """Plain-text metrics table for stdout."""
    lines = [f"{'class':<20}{'IoU':>8}{'F1':>8}{'prec':>8}{'recall':>8}{'pixels':>12}"]
    fmt = lambda v: f"{v:8.3f}" if v is not None else f"{'-':>8}"  # noqa: E731
    for n, v in record["per_class"].items():
        lines.append(f"{n:<20}{fmt(v['iou'])}{fmt(v['f1'])}{fmt(v['precision'])}{fmt(v['recall'])}{v['support']:>12}")
    for n in ("macro", "micro"):
        v = record[n]
        lines.append(f"{n:<20}{fmt(v['iou'])}{fmt(v['f1'])}{fmt(v['precision'])}{fmt(v['recall'])}")
    if "objects" in record:
        o = record["objects"]
        lines.append(f"objects (IoU>={o['iou_threshold']}): F1 {fmt(o['f1']).strip()}, "
                     f"{o['matched']} matched of {o['predicted_objects']} predicted / {o['reference_objects']} reference")
    return "\n".join(lines)

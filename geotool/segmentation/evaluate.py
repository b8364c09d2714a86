"""``evaluate``: a class raster against a reference raster or vector labels.

Per-class IoU, F1, precision, recall, macro and micro averages and the confusion matrix; optionally
object-level F1: connected foreground regions (4-connected, the same regions ``vectorize`` turns into
polygons) matched one-to-one at IoU >= 0.5. Everything is accumulated over strips of rows (prediction and
reference read, or vector references rasterized, one strip at a time), so memory is set by the strip, not
by the scene.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
from pydantic import Field

from geotool.batch import BatchOptions, SceneJob
from geotool.config import GeotoolConfig, sidecar_path, write_sidecar
from geotool.errors import ConfigError, InputFileError, RasterMismatchError
from geotool.io.components import STRIP_ROWS, StripComponents, overlap_counts
from geotool.labels import CLASS_NODATA


class EvaluateConfig(GeotoolConfig):
    """Settings of ``geotool evaluate``."""

    prediction: str = Field(..., description="Class GeoTIFF from predict (uint8, 255 = nodata).")
    reference: str = Field(..., description="Reference class raster on the same grid, or vector labels.")
    output: str = Field(..., description="metrics.json (a CSV with the per-class table is written beside it).")
    class_attribute: Optional[str] = Field(None, description="Vector column with the class (none = every polygon is class 1).")
    class_map: dict[str, int] = Field(default_factory=dict, description="Attribute value -> class id.")
    class_names: Optional[list[str]] = Field(None, description="Class names (default: from the prediction's tags).")
    ignore_index: int = Field(CLASS_NODATA, description="Reference value treated as nodata.")
    objects: Optional[bool] = Field(None, description="Object-level F1 at IoU >= 0.5 (default: when there are 2 classes).")
    object_iou: float = Field(0.5, description="IoU threshold for an object match.")
    strip_rows: int = Field(STRIP_ROWS, ge=1, description="Rows read at a time (memory ~ rows x width).")


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
    """Object-level precision/recall/F1 of two whole ``(rows, cols)`` masks: 4-connected regions matched
    one-to-one at IoU >= ``threshold`` (the in-memory reference of :class:`ObjectMatcher`)."""
    from scipy import ndimage

    structure = ndimage.generate_binary_structure(2, 1)
    lp, n_p = ndimage.label(pred_fg, structure)
    lr, n_r = ndimage.label(ref_fg, structure)
    both = (lp > 0) & (lr > 0)
    pairs = lp[both].astype(np.int64) * (n_r + 1) + lr[both]
    uniq, inter = np.unique(pairs, return_counts=True)
    area_p = np.bincount(lp.ravel(), minlength=n_p + 1)
    area_r = np.bincount(lr.ravel(), minlength=n_r + 1)
    return _match_objects(uniq // (n_r + 1), uniq % (n_r + 1), inter, area_p, area_r, threshold)


class ObjectMatcher:
    """Object-level F1 accumulated strip by strip (see :mod:`geotool.io.components`).

    Memory: the current strip plus a few numbers per object and per overlapping (prediction, reference)
    pair. :meth:`result` equals :func:`object_f1` on the whole masks.
    """

    def __init__(self) -> None:
        self.pred = StripComponents()
        self.ref = StripComponents()
        self._pairs: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # provisional ids, shared pixels

    def add(self, pred_fg: np.ndarray, ref_fg: np.ndarray) -> None:
        """Feed the next strip of both ``(rows, cols)`` foreground masks (bool)."""
        self._pairs.append(overlap_counts(self.pred.add(pred_fg), self.ref.add(ref_fg)))

    def result(self, threshold: float = 0.5) -> dict[str, Any]:
        """Precision, recall and F1 of the one-to-one matching at IoU >= ``threshold``."""
        fp, fr = self.pred.resolve(), self.ref.resolve()
        pid, rid, pixels = (np.concatenate([np.zeros(0, np.int64)] + [p[i] for p in self._pairs]) for i in range(3))
        base = self.ref.n + 1
        keys, inverse = np.unique(fp[pid] * base + fr[rid], return_inverse=True)
        inter = np.bincount(inverse.ravel(), weights=pixels, minlength=len(keys)).astype(np.int64)
        return _match_objects(keys // base, keys % base, inter, self.pred.counts, self.ref.counts, threshold)


def _match_objects(pi: np.ndarray, ri: np.ndarray, inter: np.ndarray, area_p: np.ndarray, area_r: np.ndarray,
                   threshold: float) -> dict[str, Any]:
    """Greedy one-to-one matching by decreasing IoU >= ``threshold`` of overlapping pairs ``(pi, ri)``.

    ``inter`` is each pair's shared pixels (pairs sorted by ``(pi, ri)``); ``area_p``/``area_r`` are object
    sizes in pixels indexed by id (ids 1..n, index 0 = background).
    """
    n_p, n_r = len(area_p) - 1, len(area_r) - 1
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
    """Compute the metrics strip by strip, write JSON + CSV, return the JSON record."""
    import pandas as pd

    from geotool.io.components import strip_windows
    from geotool.io.files import require_file, write_json, write_table
    from geotool.io.raster import RasterSource, read_tags
    from geotool.progress import progress_bar

    out = Path(cfg.output)
    if out.suffix.lower() != ".json":
        raise ConfigError(f"--output {out}: give a .json path (a .csv is written beside it)")
    require_file(cfg.prediction, "prediction raster")
    require_file(cfg.reference, "reference file")
    names = cfg.class_names or [n for n in read_tags(cfg.prediction).get("classes", "").split(",") if n]
    # with more than 2 named classes k > 2, so objects are off by default: skip the labelling
    matcher = ObjectMatcher() if cfg.objects or (cfg.objects is None and len(names) <= 2) else None
    conf = np.zeros((2, 2), np.int64)
    with ExitStack() as stack:
        pred_src = stack.enter_context(RasterSource(cfg.prediction))
        _require_class_raster(pred_src, cfg.prediction)
        read_reference = _reference_reader(cfg, pred_src.grid, stack)
        n_strips = -(-pred_src.grid.height // cfg.strip_rows)
        bar = stack.enter_context(progress_bar(f"evaluate {Path(cfg.prediction).name}", n_strips))
        for window in strip_windows(pred_src.grid, cfg.strip_rows):
            pred, pvalid = pred_src.read(window)
            pred = pred[0]
            ref, rvalid = read_reference(window)
            keep = pvalid & (pred != CLASS_NODATA) & rvalid
            conf = add_confusion(conf, ref[keep], pred[keep])
            if matcher is not None:
                matcher.add((pred > 0) & keep, (ref > 0) & keep)
            bar.advance()
    k = max(len(conf), len(names))
    conf = np.pad(conf, (0, k - len(conf)))
    names = (names + [f"class_{i}" for i in range(len(names), k)])[:k]
    record = {"prediction": cfg.prediction, "reference": cfg.reference, "classes": names, **confusion_metrics(conf, names)}
    if matcher is not None and (cfg.objects or k == 2):
        record["objects"] = matcher.result(cfg.object_iou)
    rows = [{"class": n, **v} for n, v in record["per_class"].items()]
    rows += [{"class": "macro", **record["macro"]}, {"class": "micro", **record["micro"]}]
    write_json(out, record)
    write_table(out.with_suffix(".csv"), pd.DataFrame(rows))
    write_sidecar(out, "evaluate", cfg, inputs=[cfg.prediction, cfg.reference])
    return record


class EvaluateJob(SceneJob):
    """``evaluate`` on one class raster of a batch: ``<stem>_metrics.json`` (+ ``.csv``) in the output folder,
    against one shared vector/raster reference or the same-named raster of a reference folder."""

    command = "evaluate"

    def __init__(self, cfg: EvaluateConfig) -> None:
        self.cfg = cfg

    def metrics_path(self, scene: str) -> Path:
        return Path(self.cfg.output) / f"{Path(scene).stem}_metrics.json"

    def outputs(self, scene: str) -> list[Path]:
        path = self.metrics_path(scene)
        return [path, path.with_suffix(".csv"), sidecar_path(path)]

    def run(self, resources, scene: str) -> dict[str, Any]:
        from geotool.batch.paths import reference_for

        reference = reference_for(scene, self.cfg.reference, ("_classes",))
        return run_evaluate(self.cfg.model_copy(update={"prediction": scene, "reference": reference,
                                                        "output": str(self.metrics_path(scene))}))


def run_evaluate_batch(cfg: EvaluateConfig, predictions: list[str], batch: BatchOptions | None = None,
                       on_outcome=None):
    """Evaluate several class rasters (a batch: skip-existing, shards, keep-going, Dask workers) into the
    folder ``cfg.output``; the scenes' confusion matrices pooled into ``metrics.json`` (unsharded runs)."""
    from geotool.batch import run_batch
    from geotool.batch.paths import require_output_folder, require_reference
    from geotool.io.files import expand_inputs

    batch = batch or BatchOptions()
    scenes = sorted(str(p) for p in expand_inputs(predictions, what="prediction raster"))
    out = require_output_folder(cfg.output, several="predictions")
    require_reference(cfg.reference, "reference file")
    job = EvaluateJob(cfg)
    result = run_batch(job, scenes, batch, out, on_outcome=on_outcome)
    done = result.finished
    if done and batch.shard is None:
        result.pooled = pool_metrics([job.metrics_path(s) for s in done], out / "metrics.json", cfg)
    return result


def pool_metrics(paths: list[Path], out: Path, cfg: EvaluateConfig) -> dict[str, Any]:
    """Pixel metrics of all scenes together (their confusion matrices summed) and object counts summed."""
    import pandas as pd

    from geotool.io.files import read_json, write_json, write_table

    records = [read_json(p) for p in paths]
    k = max(len(r["confusion_matrix"]) for r in records)
    conf = np.zeros((k, k), np.int64)
    for r in records:
        m = np.asarray(r["confusion_matrix"], np.int64)
        conf[: len(m), : len(m)] += m
    names = max((r["classes"] for r in records), key=len)
    record = {"scenes": [r["prediction"] for r in records], "reference": cfg.reference, "classes": names,
              **confusion_metrics(conf, names)}
    if all("objects" in r for r in records):
        tp, n_p, n_r = (sum(r["objects"][key] for r in records) for key in ("matched", "predicted_objects", "reference_objects"))
        precision, recall = (tp / n_p if n_p else None), (tp / n_r if n_r else None)
        f1 = 2 * tp / (n_p + n_r) if n_p + n_r else None
        record["objects"] = {"iou_threshold": cfg.object_iou, "matched": tp, "predicted_objects": n_p,
                             "reference_objects": n_r, "precision": precision, "recall": recall, "f1": f1}
    rows = [{"class": n, **v} for n, v in record["per_class"].items()]
    rows += [{"class": "macro", **record["macro"]}, {"class": "micro", **record["micro"]}]
    write_json(out, record)
    write_table(out.with_suffix(".csv"), pd.DataFrame(rows))
    return record


def _reference_reader(cfg: EvaluateConfig, grid, stack: ExitStack) -> Callable:
    """``window -> (classes (rows, cols), valid bool)`` of the reference on the prediction's grid.

    Vector labels are reprojected once and rasterized per window; a reference raster must share the grid.
    """
    from geotool.io.raster import RasterSource
    from geotool.io.vector import rasterize, read_vector, require_polygons
    from geotool.segmentation.data import is_vector, label_values

    if is_vector(cfg.reference):
        gdf = require_polygons(read_vector(cfg.reference, target=grid, raster_name=cfg.prediction), cfg.reference,
                               "give polygons (or a reference class raster) to evaluate against")
        gdf, values = label_values(gdf, cfg.reference, cfg.class_attribute, cfg.class_map)

        def burn(window):
            ref = rasterize(gdf, grid, window=window, values=values, fill=0, dtype="int32")
            return ref, np.ones(ref.shape, bool)

        return burn
    src = stack.enter_context(RasterSource(cfg.reference))
    if not src.grid.same_as(grid):
        raise RasterMismatchError(f"{cfg.reference} is not on the grid of {cfg.prediction} "
                                  f"({'; '.join(src.grid.differences(grid))}); resample it first")

    def read(window):
        ref, valid = src.read(window)
        ref = ref[0]
        return ref, valid & (ref != cfg.ignore_index)

    return read


def _require_class_raster(src, path: str) -> None:
    """A prediction is one band of integer class ids (what predict writes), not an image or probabilities."""
    dtype = np.dtype(src.dtypes[0])
    if src.count != 1 or dtype.kind not in "iu":
        raise InputFileError(f"{path} is not a class raster ({src.count} band(s) of {dtype}); give the "
                             "<name>_classes.tif that predict wrote (one band of integer class ids)")


def add_confusion(conf: np.ndarray, ref: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """``conf`` (rows = reference) plus the pairs ``(ref, pred)``, grown to the largest class seen."""
    ref, pred = ref.astype(np.int64), pred.astype(np.int64)
    k = max(len(conf), int(ref.max(initial=0)) + 1, int(pred.max(initial=0)) + 1)
    conf = np.pad(conf, (0, k - len(conf)))
    return conf + np.bincount(ref * k + pred, minlength=k * k).reshape(k, k)


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

"""``predict``: a checkpoint over rasters with the shared sliding-window engine; optional polygons."""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path
from typing import Any, Optional

import numpy as np
from pydantic import Field

from geotool.config import write_sidecar
from geotool.errors import BandError, ConfigError
from geotool.inference import InferenceOptions
from geotool.labels import CLASS_NODATA

log = logging.getLogger(__name__)
PROB_NODATA = -1.0
#: Longest side of a preview, pixels (the scene is sampled every ``side // PREVIEW_PIXELS``-th pixel).
PREVIEW_PIXELS = 1000


class PredictConfig(InferenceOptions):
    """Settings of ``geotool predict`` (window, batch, flips, device and threads shared with ``generate-nir``)."""

    model: str = Field(..., description="model.ckpt written by train-segmentation.")
    rasters: list[str] = Field(..., description="Rasters (paths, globs or folders).")
    output: str = Field(..., description="Output folder: <name>_classes.tif (+ _probs.tif, _preview.png).")
    probabilities: bool = Field(False, description="Also write the class probabilities (float32, one band per class).")
    polygons: Optional[str] = Field(None, description="GeoPackage of predicted polygons (class, area), raster CRS.")
    min_area: float = Field(0.0, description="Drop polygons smaller than this, squared CRS units (m^2).")
    simplify: float = Field(0.0, description="Polygon simplification tolerance, CRS units.")
    preview: bool = Field(True, description="Write a PNG overlay per raster (downsampled).")


def make_predict_fn(net, mean, std, device):
    """``(batch raw (B,C,w,w), valid) -> softmax (B,K,w,w)`` float32 numpy (on a GPU through pinned buffers)."""
    import torch

    from geotool.models.transfer import HostDeviceCopy

    m = torch.tensor(mean, dtype=torch.float32, device=device).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32, device=device).view(1, -1, 1, 1)
    copy = HostDeviceCopy(device)

    def predict(batch: np.ndarray, valid: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            x = copy.to_device(batch, "batch")
            v = copy.to_device(valid, "valid").unsqueeze(1)
            x = torch.where(v, (x - m) / s, torch.zeros_like(x))
            return copy.to_host(torch.softmax(net(x).float(), 1))

    return predict


def predict_raster(net, payload: dict[str, Any], raster: str, out_dir: Path, cfg: PredictConfig, device: str) -> dict[str, Any]:
    """Predict one raster: writes ``<stem>_classes.tif`` (uint8, 255 = nodata) and optionally probabilities."""
    from geotool.io.raster import RasterSource, RasterWriter, open_writers
    from geotool.io.tiling import class_argmax, run_tiled

    spec = cfg.tiling_spec(payload["window"], payload.get("overlap"))
    n_classes = payload["arch"]["classes"]
    stem = Path(raster).stem
    outputs = {"classes": out_dir / f"{stem}_classes.tif"}
    if cfg.probabilities:
        outputs["probs"] = out_dir / f"{stem}_probs.tif"
    names = payload["class_names"]
    with RasterSource(raster, bands=payload["bands"], nodata=payload.get("input_nodata")) as src:
        _check_bands(payload, src, raster)
        # class names as GDAL categories beside a colour table: QGIS opens the raster with a legend
        writers = {"classes": RasterWriter(outputs["classes"], src.grid, 1, "uint8", CLASS_NODATA, ["class"],
                                           tags={"classes": ",".join(names)}, categories=names)}
        if cfg.probabilities:
            writers["probs"] = RasterWriter(outputs["probs"], src.grid, n_classes, "float32", PROB_NODATA, [f"p_{n}" for n in names])

        def finalize(blended, raw, valid):
            cls = class_argmax(blended)
            cls[~valid] = CLASS_NODATA
            res = {"classes": cls}
            if cfg.probabilities:
                res["probs"] = np.where(valid[None], blended, np.float32(PROB_NODATA))
            return res

        # the preview is drawn from every step-th pixel the engine writes: no output or input is read again
        step = max(1, max(src.grid.shape) // PREVIEW_PIXELS)
        with open_writers(writers) as opened:
            stats = run_tiled(src, make_predict_fn(net, payload["mean"], payload["std"], device), n_classes, finalize,
                              opened, spec, description=f"predict {Path(raster).name}",
                              thumbnail_step=step if cfg.preview else 0, thumbnail_sinks=["classes"], finalize_input=False)
    res = {"raster": str(raster), "windows": stats.n_windows, "seconds": round(stats.total_seconds, 3),
           "predict_seconds": round(stats.predict_seconds, 3), **{k: str(v) for k, v in outputs.items()}}
    if cfg.preview:
        res["preview"] = str(_preview(stats.thumbnails, writers["classes"].colormap, out_dir / f"{stem}_preview.png",
                                      Path(raster).name))
    return res


def _preview(thumbnails: dict[str, np.ndarray], colormap: dict[int, tuple], path: Path, title: str) -> Path:
    """The scene (first three bands, 2-98 % stretch) beside the same with its non-background classes blended
    in at half opacity, in the class raster's own colours (as QGIS shows it); nodata black. From the engine's
    thumbnails, written as a plain PNG (no figure)."""
    from geotool.io.figures import save_image, stretch_rgb

    classes = thumbnails["classes"][0]
    valid = thumbnails["valid"] & (classes != CLASS_NODATA)
    rgb = stretch_rgb(thumbnails["input"][:3], valid)
    palette = np.zeros((256, 3), np.float32)
    for value, colour in colormap.items():
        palette[value] = np.asarray(colour[:3], np.float32) / 255
    shown = (valid & (classes != 0))[..., None]
    over = np.where(shown, 0.5 * rgb + 0.5 * palette[classes], rgb)
    gap = np.ones((rgb.shape[0], max(2, rgb.shape[1] // 100), 3), np.float32)
    return save_image(np.concatenate([rgb, gap, over], axis=1), path, title=f"{title}: image | prediction")


def _check_bands(payload: dict[str, Any], src, path: str) -> None:
    """The selected bands of ``path`` must be as many as the model was trained on."""
    if src.count != payload["band_count"]:
        raise BandError(f"{path}: {src.count} bands selected, the model was trained on {payload['band_count']} "
                        f"(bands {payload['bands']}); give a raster with the same bands in the same order")


def run_predict(cfg: PredictConfig) -> dict[str, Any]:
    """Predict every raster; optional polygons and previews; sidecar in the output folder."""
    from geotool.io.files import expand_inputs, require_checkpoint_file
    from geotool.io.raster import check_sources
    from geotool.segmentation.checkpoint import load_model

    if cfg.batch_size < 1 or cfg.min_area < 0 or cfg.simplify < 0:
        raise ConfigError("--batch-size must be positive and --min-area, --simplify non-negative")
    if cfg.polygons is not None and Path(cfg.polygons).suffix.lower() not in (".gpkg", ".geojson", ".shp"):
        raise ConfigError(f"--polygons {cfg.polygons}: use a .gpkg, .geojson or .shp path")
    rasters = [str(p) for p in expand_inputs(cfg.rasters)]  # the paths before torch loads (seconds): a typo is said at once
    require_checkpoint_file(cfg.model)
    device = cfg.torch_device()  # before the model loads: a missing GPU is said at once
    net, payload = load_model(cfg.model)
    check_sources(rasters, payload["bands"], payload.get("input_nodata"), partial(_check_bands, payload),  # before any write
                  band_context=f"does not hold the bands the model was trained on ({payload['band_count']} bands: {payload['bands']})")
    window = cfg.tiling_spec(payload["window"], payload.get("overlap")).window  # the spec each raster runs with
    if window % 32:
        raise ConfigError(f"--window must be a multiple of 32, not {window}")
    net.to(device)
    out_dir = Path(cfg.output)
    out_dir.mkdir(parents=True, exist_ok=True)
    results = [predict_raster(net, payload, r, out_dir, cfg, device) for r in rasters]
    if cfg.polygons or cfg.preview:
        _post(results, payload, cfg)
    write_sidecar(out_dir, "predict", cfg, inputs=[cfg.model] + rasters, results={"rasters": results})
    return {"rasters": results, "polygons": cfg.polygons}


def _post(results: list[dict], payload: dict, cfg: PredictConfig) -> None:
    """Polygons (previews are written with each class raster, see :func:`predict_raster`). Polygons stream:
    each class raster is read in strips of rows and every region is written as soon as it is complete, so
    memory is set by the width and the regions still open, not by the scene. One file for all inputs when they share a CRS, else one file per input
    (``<stem>_<raster stem><suffix>``); the files appear only when every input is done."""
    from contextlib import ExitStack

    from geotool.io.raster import RasterSource
    from geotool.io.vector import iter_polygons_source

    names = dict(enumerate(payload["class_names"]))
    with ExitStack() as stack:
        writers = _polygon_writers(results, cfg.polygons, stack) if cfg.polygons else []
        for i, res in enumerate(results):
            if cfg.polygons:
                res["polygons"] = 0
                with RasterSource(res["classes"]) as src:
                    for gdf in iter_polygons_source(src, background=0, nodata=CLASS_NODATA, min_area=cfg.min_area,
                                                    simplify=cfg.simplify, class_names=names,
                                                    description=f"polygons {Path(res['raster']).name}"):
                        gdf["source"] = Path(res["raster"]).name
                        writers[i].write(gdf)
                        res["polygons"] += len(gdf)


def _polygon_writers(results: list[dict], polygons: str, stack) -> list:
    """One vector writer per result (entered on ``stack``): the same one when every class raster has the
    same CRS, else one file per raster."""
    from geotool.io.raster import read_grid
    from geotool.io.vector import frame_crs, vector_writer

    crs = {str(frame_crs(read_grid(res["classes"]).crs)) for res in results}  # the CRS each input's polygons carry
    if len(crs) == 1:
        return [stack.enter_context(vector_writer(polygons))] * len(results)
    p = Path(polygons)
    return [stack.enter_context(vector_writer(p.with_name(f"{p.stem}_{Path(r['raster']).stem}{p.suffix}")))
            for r in results]

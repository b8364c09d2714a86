"""``predict``: a checkpoint over rasters with the shared sliding-window engine; optional polygons."""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import numpy as np
from pydantic import Field

from geotool.batch import BatchOptions, SceneJob
from geotool.config import sidecar_path, write_sidecar
from geotool.errors import BandError, ConfigError, EmptyDataError
from geotool.inference import InferenceOptions
from geotool.labels import CLASS_NODATA

if TYPE_CHECKING:
    from geotool.io.finishing import Finishing

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
    return start_predict(net, payload, raster, out_dir, cfg, device).run()


def start_predict(net, payload: dict[str, Any], raster: str, out_dir: Path, cfg: PredictConfig, device: str,
                  marker: Path | None = None) -> "Finishing":
    """Run the model over one raster into temp files and return what is left (:class:`~geotool.io.finishing.Finishing`):
    the COGs of ``<stem>_classes.tif`` (+ ``_probs.tif``) renamed into place, then the preview. ``marker``: the
    scene's sidecar, removed before the outputs are replaced."""
    from geotool.io.finishing import Finishing
    from geotool.io.raster import RasterSource, RasterWriter, open_writers
    from geotool.io.tiling import class_argmax, run_tiled

    spec = cfg.tiling_spec(payload["window"], payload.get("overlap"))
    n_classes = payload["arch"]["classes"]
    stem = Path(raster).stem
    outputs = {"classes": out_dir / f"{stem}_classes.tif"}
    if cfg.probabilities:
        outputs["probs"] = out_dir / f"{stem}_probs.tif"
    names = payload["class_names"]
    finishing = Finishing(marker=marker)
    # once open_writers hands it the outputs, an error (or Ctrl-C) before it is returned must drop them
    with finishing.dropped_on_error(), \
            RasterSource(raster, bands=payload["bands"], nodata=payload.get("input_nodata")) as src:
        _check_bands(payload, src, raster)
        # class names as GDAL categories beside a colour table: QGIS opens the raster with a legend
        writers = {"classes": RasterWriter(outputs["classes"], src.grid, 1, "uint8", CLASS_NODATA, ["class"],
                                           tags={"classes": ",".join(names)}, categories=names)}
        if cfg.probabilities:
            writers["probs"] = RasterWriter(outputs["probs"], src.grid, n_classes, "float32", PROB_NODATA, [f"p_{n}" for n in names])

        valid_pixels = [0]  # an all-nodata scene is refused, not written as an all-nodata raster

        def finalize(blended, raw, valid):
            valid_pixels[0] += int(valid.sum())
            cls = class_argmax(blended)
            cls[~valid] = CLASS_NODATA
            res = {"classes": cls}
            if cfg.probabilities:
                res["probs"] = np.where(valid[None], blended, np.float32(PROB_NODATA))
            return res

        # the preview is drawn from every step-th pixel the engine writes: no output or input is read again
        step = max(1, max(src.grid.shape) // PREVIEW_PIXELS)
        with open_writers(writers, finishing) as opened:
            stats = run_tiled(src, make_predict_fn(net, payload["mean"], payload["std"], device), n_classes, finalize,
                              opened, spec, description=f"predict {Path(raster).name}",
                              thumbnail_step=step if cfg.preview else 0, thumbnail_sinks=["classes"], finalize_input=False)
            if not valid_pixels[0]:
                raise EmptyDataError(f"{raster} has no valid pixel (every pixel is nodata in the bands the model "
                                     "reads); check the scene or its --nodata")
    with finishing.dropped_on_error():  # the outputs wait in temp files: an error from here on must remove them
        finishing.result.update({"raster": str(raster), "windows": stats.n_windows,
                                 "seconds": round(stats.total_seconds, 3), "predict_seconds": round(stats.predict_seconds, 3),
                                 **{k: str(v) for k, v in outputs.items()}})
        if cfg.preview:
            preview = out_dir / f"{stem}_preview.png"

            def write_preview() -> None:
                finishing.result["preview"] = str(_preview(stats.thumbnails, writers["classes"].colormap, preview,
                                                           Path(raster).name))

            finishing.then(write_preview, [preview])
    return finishing


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


class PredictJob(SceneJob):
    """``predict`` on one scene: class raster (+ probabilities), its polygons and preview, and a sidecar."""

    command = "predict"

    def __init__(self, cfg: PredictConfig, lone: bool = False) -> None:
        self.cfg = cfg
        self.lone = lone  # one scene: its polygons go straight to --polygons

    def outputs(self, scene: str) -> list[Path]:
        out, stem = Path(self.cfg.output), Path(scene).stem
        files = [out / f"{stem}_classes.tif"]
        if self.cfg.probabilities:
            files.append(out / f"{stem}_probs.tif")
        if self.cfg.polygons:
            files.append(self.scene_polygons(scene))
        if self.cfg.preview:
            files.append(out / f"{stem}_preview.png")
        return files + [sidecar_path(files[0])]  # the sidecar is written last: its presence means finished

    def scene_polygons(self, scene: str) -> Path:
        """Where ``scene``'s polygons go: --polygons for a lone scene, else ``<stem>_polygons<suffix>`` beside
        the class raster (merged into --polygons when the batch ends)."""
        if self.lone:
            return Path(self.cfg.polygons)
        return Path(self.cfg.output) / f"{Path(scene).stem}_polygons{Path(self.cfg.polygons).suffix}"

    def setup(self):
        from geotool.segmentation.checkpoint import load_model

        device = self.cfg.torch_device()  # before the model loads: a missing GPU is said at once
        net, payload = load_model(self.cfg.model)
        return net.to(device), payload, device

    def run(self, resources, scene: str) -> dict[str, Any]:
        return self.start(resources, scene).run()

    def start(self, resources, scene: str) -> "Finishing":
        """The model over ``scene``; left to the returned finishing: the COGs, the preview, the polygons read from
        the class raster and the sidecar (last)."""
        from geotool.io.raster import check_sources

        net, payload, device = resources
        check_sources([scene], payload["bands"], payload.get("input_nodata"), partial(check_scene, payload),
                      band_context=f"does not hold the bands the model was trained on ({payload['band_count']} bands: {payload['bands']})")
        sidecar = self.outputs(scene)[-1]
        finishing = start_predict(net, payload, scene, Path(self.cfg.output), self.cfg, device, marker=sidecar)
        res = finishing.result
        with finishing.dropped_on_error():
            if self.cfg.polygons:
                polygons = self.scene_polygons(scene)

                def write_polygons() -> None:
                    res["polygons"] = _scene_polygons(res, payload, self.cfg, polygons)
                    res["polygons_file"] = str(polygons)

                finishing.then(write_polygons, [polygons])
            finishing.then(lambda: write_sidecar(res["classes"], "predict", self.cfg, inputs=[self.cfg.model, scene],
                                                 results=res), [sidecar])
        return finishing


RANGE_RATIO = 4.0  # a band mean this many times above (or below 1/this of) the training mean...
RANGE_SIGMAS = 3.0  # ...and this many training standard deviations away is another scale, not another scene


def check_scene(payload: dict[str, Any], src, path: str) -> None:
    """The checks of one scene before it is predicted: the bands, then the values (on the open ``src``)."""
    _check_bands(payload, src, path)
    check_value_range(src, payload, path)


def check_value_range(src, payload: dict[str, Any], path: str) -> None:
    """Refuse a scene (``src``, opened with the model's bands) whose values are on another scale than the
    training data (uint16 to a uint8 model, reflectance to DN): the model would run and quietly find almost nothing.

    A lattice of windows is sampled (:func:`geotool.io.sampling.sample_values`); a band whose valid mean is
    both ``RANGE_RATIO`` times off the training mean and ``RANGE_SIGMAS`` training standard deviations away
    is refused. Checkpoints that record the training dtype also refuse another dtype."""
    from geotool.io.sampling import sample_values

    trained = payload.get("input_dtype")
    if trained and np.dtype(src.dtypes[0]) != np.dtype(trained):
        raise BandError(f"{path} is {src.dtypes[0]} but the model was trained on {trained} data; "
                        "convert it to the training data's type and range, or retrain on such scenes")
    values = sample_values(src)
    if values.shape[1] == 0:
        return  # no valid pixel sampled: whether there is any is the engine's to tell
    for band, m, mt, st in zip(payload["bands"], values.mean(axis=1), payload["mean"], payload["std"]):
        far = abs(m - mt) > RANGE_SIGMAS * max(st, 1e-9)
        scaled = mt > 0 and (m > RANGE_RATIO * mt or m < mt / RANGE_RATIO)
        if far and scaled:
            raise BandError(f"{path}: band {band} averages {m:.4g} where the training data averaged {mt:.4g} "
                            f"(std {st:.3g}): another scale or data type than the model saw; rescale the scene to the "
                            "training data's range (e.g. gdal_translate -scale) or retrain on such scenes")


def run_predict(cfg: PredictConfig, batch: BatchOptions | None = None, on_outcome=None) -> dict[str, Any]:
    """Predict every raster (each one scene of a batch: skip-existing, shards, keep-going, Dask workers);
    polygons of the batch merged into --polygons; a sidecar per scene and one for the run."""
    from geotool.batch import run_batch
    from geotool.batch.job import resources_for
    from geotool.batch.paths import require_output_folder
    from geotool.io.files import expand_inputs, require_checkpoint_file

    batch = batch or BatchOptions()
    if cfg.batch_size < 1 or cfg.min_area < 0 or cfg.simplify < 0:
        raise ConfigError("--batch-size must be positive and --min-area, --simplify non-negative")
    if cfg.polygons is not None and Path(cfg.polygons).suffix.lower() not in (".gpkg", ".geojson", ".shp"):
        raise ConfigError(f"--polygons {cfg.polygons}: use a .gpkg, .geojson or .shp path")
    rasters = sorted(str(p) for p in expand_inputs(cfg.rasters))  # the paths before torch loads (seconds)
    require_checkpoint_file(cfg.model)
    out_dir = require_output_folder(cfg.output)
    job = PredictJob(cfg, lone=len(rasters) == 1 and batch.shard is None)
    if batch.distributed():  # the workers load it where the GPUs are; here it is only checked
        from geotool.segmentation.checkpoint import load_model

        _, payload = load_model(cfg.model)
    else:
        _, payload, _ = resources_for(job)  # checked, and loaded once for every scene, before any scene runs
    window = cfg.tiling_spec(payload["window"], payload.get("overlap")).window  # the spec each raster runs with
    if window % 32:
        raise ConfigError(f"--window must be a multiple of 32, not {window}")
    result = run_batch(job, rasters, batch, out_dir, on_outcome=on_outcome)
    done = result.finished
    merged = []
    if cfg.polygons and not job.lone and done:
        merged = merge_polygons([job.scene_polygons(s) for s in done], Path(cfg.polygons), batch.shard_part())
    results = result.results
    if results and batch.shard is None:  # shards share the folder: their scenes' own sidecars say it all
        write_sidecar(out_dir, "predict", cfg, inputs=[cfg.model], results={"rasters": results, "polygons": [str(p) for p in merged]})
    return {"rasters": results, "polygons": cfg.polygons, "batch": result}


def _scene_polygons(res: dict, payload: dict, cfg: PredictConfig, path: Path) -> int:
    """Polygons of one class raster, streamed: read in strips of rows and every region written as soon
    as it is complete, so memory is set by the width and the regions still open, not by the scene."""
    from geotool.io.raster import RasterSource
    from geotool.io.vector import iter_polygons_source, vector_writer

    names = dict(enumerate(payload["class_names"]))
    count = 0
    with RasterSource(res["classes"]) as src, vector_writer(path) as writer:
        for gdf in iter_polygons_source(src, background=0, nodata=CLASS_NODATA, min_area=cfg.min_area,
                                        simplify=cfg.simplify, class_names=names,
                                        description=f"polygons {Path(res['raster']).name}"):
            gdf["source"] = Path(res["raster"]).name
            writer.write(gdf)
            count += len(gdf)
    return count


def merge_polygons(files: list[Path], target: Path, shard: tuple[int, int] | None = None) -> list[Path]:
    """Append the scenes' polygon files into ``target`` in scene order: one file when they share a CRS,
    else one per CRS (``<stem>_<CRS><suffix>``); a shard writes ``<stem>-K-of-N``. Chunked reads, atomic files."""
    from geotool.io.vector import iter_vector_chunks, vector_crs, vector_writer

    if shard is not None:
        target = target.with_name(f"{target.stem}-{shard[0]}-of-{shard[1]}{target.suffix}")
    groups: dict[str, list[Path]] = {}
    for path in files:
        groups.setdefault(vector_crs(path), []).append(path)
    written = []
    for crs, members in groups.items():
        path = target if len(groups) == 1 else target.with_name(f"{target.stem}_{_crs_tag(crs)}{target.suffix}")
        with vector_writer(path) as writer:
            for member in members:
                for gdf in iter_vector_chunks(member):
                    writer.write(gdf)
        written.append(path)
    log.info("polygons of %d scenes merged into %s", len(files), ", ".join(map(str, written)))
    return written


def _crs_tag(crs: str) -> str:
    """A file-name-safe tag for a CRS: ``EPSG:32633`` -> ``EPSG32633``."""
    return "".join(ch for ch in crs if ch.isalnum()) or "nocrs"

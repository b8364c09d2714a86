"""``generate-nir``: tiled NIR generation with seamless blending, plus optional RGB+NIR stack and NDVI."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import numpy as np
from pydantic import Field

from geotool.batch import BatchOptions, SceneJob
from geotool.config import sidecar_path, write_sidecar
from geotool.errors import CheckpointError, ConfigError, EmptyDataError, OutputError
from geotool.inference import InferenceOptions

if TYPE_CHECKING:
    from geotool.io.finishing import Finishing

log = logging.getLogger(__name__)
NDVI_NODATA = -9999.0


class GenerateNIRConfig(InferenceOptions):
    """Settings of ``geotool generate-nir`` (window, batch, flips, device and threads shared with ``predict``)."""

    model: Optional[str] = Field(None, description="model.ckpt written by train-nir.")
    inputs: list[str] = Field(default_factory=list, description="RGB GeoTIFFs.")
    output: Optional[str] = Field(None, description="Output .tif (one input) or folder (any number).")
    rgb_bands: Optional[list[int | str]] = Field(None, description="R,G,B bands of the inputs (default: the checkpoint's).")
    stack: bool = Field(False, description="Write RGB + generated NIR as one 4-band file instead of NIR alone.")
    ndvi: bool = Field(False, description="Also write an NDVI raster (float32, nodata -9999) next to each output.")


def output_paths(cfg: GenerateNIRConfig, inputs: list[str]) -> dict[str, Path]:
    """Output file per input: ``--output x.tif`` for one input, else ``OUT_DIR/<stem>_nir.tif`` (``_rgbn``)."""
    out = Path(cfg.output)
    if out.suffix.lower() in (".tif", ".tiff"):
        if len(inputs) != 1:
            raise OutputError(f"--output {out} is a file but {len(inputs)} inputs were given; give a folder")
        if out.resolve() == Path(inputs[0]).resolve():
            raise OutputError(f"--output {out} is the input itself; give another file name")
        return {inputs[0]: out}
    if out.suffix:
        raise OutputError(f"--output {out}: give a .tif file or a folder")
    if out.exists() and not out.is_dir():
        raise OutputError(f"--output {out} is a file; give a folder for the outputs")
    suffix = "_rgbn.tif" if cfg.stack else "_nir.tif"
    paths = {p: out / f"{Path(p).stem}{suffix}" for p in inputs}
    if len(set(paths.values())) < len(paths):
        raise OutputError(f"--output {out}: two inputs share a file name; give them different names or separate runs")
    return paths


def ndvi_path(path: Path) -> Path:
    """``x.tif`` -> ``x_ndvi.tif``."""
    return path.with_name(path.stem + "_ndvi.tif")


def make_predict(net, device):
    """Wrap the generator: unit RGB ``(B,3,h,w)`` -> unit NIR ``(B,1,h,w)`` (on a GPU through pinned buffers)."""
    import torch

    from geotool.models.transfer import HostDeviceCopy

    copy = HostDeviceCopy(device)

    def predict(batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            x = copy.to_device(batch)
            y = (net(x * 2 - 1) + 1) / 2
            return copy.to_host(y.float())

    return predict


def input_transform(path: str, bands, meta: dict):
    """How one input reaches the network, from a lattice sample of it (:func:`geotool.nir.data.lattice_sample`,
    as in training): ``(rgb_scaling, harmonise transform, unit sample)``. A ``percentile`` scaling is
    resolved on the input itself, as training resolved each training scene's."""
    from geotool.nir.data import lattice_sample
    from geotool.nir.harmonise import Harmoniser
    from geotool.nir.scaling import Scaling, fit_scaling

    stored = Scaling.from_dict(meta["rgb_scaling"])
    sample = lattice_sample(path, bands)
    if meta.get("scaling_kind") == "percentile" and sample.shape[1]:
        scaling = fit_scaling("percentile", sample, stored.dtype)
    else:
        scaling = stored
    unit = scaling.to_unit(sample)
    return scaling, Harmoniser.from_dict(meta.get("harmonise")).for_scene(unit), unit


def domain_report(path: str, unit_sample, transform, meta: dict) -> dict | None:
    """How far ``path``'s colours (its unit-scale lattice sample) lie from the training scenes'
    (:mod:`geotool.nir.domain`), warning when outside; with harmonisation also the distance after it
    (``harmonised``: what the network sees). None for a checkpoint without a training domain."""
    from geotool.nir.domain import TrainingDomain, histogram

    if "rgb_domain" not in meta or unit_sample.shape[1] == 0:
        return None
    report = TrainingDomain.from_dict(meta["rgb_domain"]).report(histogram(unit_sample))
    if transform.kind != "none" and "input_domain" in meta:
        report["harmonised"] = TrainingDomain.from_dict(meta["input_domain"]).report(histogram(transform.apply(unit_sample)))
        report["harmonise"] = transform.record()
    if report["outside"]:
        after = f"; after {transform.kind} harmonisation {report['harmonised']['distance']:.3f}" if "harmonised" in report else ""
        log.warning("%s: its colours lie %.3f from the training scenes' (the farthest training scene: %.3f)%s; the "
                    "generated NIR may be off: check it, or train on scenes like it", path, report["distance"],
                    report["training_spread"], after)
    return report


class GenerateNIRJob(SceneJob):
    """``generate-nir`` on one scene: the NIR (or RGB+NIR stack) GeoTIFF, optional NDVI, and its sidecar."""

    command = "generate-nir"

    def __init__(self, cfg: GenerateNIRConfig, outputs: dict[str, Path]) -> None:
        self.cfg = cfg
        self.paths = outputs

    def outputs(self, scene: str) -> list[Path]:
        out = self.paths[scene]
        return [out] + ([ndvi_path(out)] if self.cfg.ndvi else []) + [sidecar_path(out)]  # sidecar last

    def setup(self):
        from geotool.nir.checkpoint import load_model

        device = self.cfg.torch_device()  # before the model loads: a missing GPU is said at once
        net, meta = load_model(self.cfg.model)
        return make_predict(net.to(device), device), meta

    def run(self, resources, scene: str) -> dict:
        return self.start(resources, scene).run()

    def start(self, resources, scene: str) -> "Finishing":
        """The model over ``scene``; left to the returned finishing: the COGs and the sidecar (last)."""
        predict_unit, meta = resources
        return start_scene(predict_unit, meta, scene, self.paths[scene], self.cfg)


def run_generate_nir(cfg: GenerateNIRConfig, batch: BatchOptions | None = None, on_outcome=None):
    """Generate NIR for every input scene (a batch: skip-existing, shards, keep-going, Dask workers);
    the model and options are checked before any scene, each scene before its own output."""
    from geotool.batch import run_batch
    from geotool.batch.job import resources_for
    from geotool.io.files import expand_inputs, require_checkpoint_file

    batch = batch or BatchOptions()
    if cfg.model is None or not cfg.inputs or cfg.output is None:
        raise ConfigError("generate-nir needs MODEL.ckpt, at least one RGB raster and --output")
    inputs = sorted(str(p) for p in expand_inputs(cfg.inputs))  # each file one scene, never one band stack
    require_checkpoint_file(cfg.model)  # the paths before torch loads (seconds): a typo is said at once
    job = GenerateNIRJob(cfg, output_paths(cfg, inputs))
    if batch.distributed():  # the workers load it where the GPUs are; here it is only checked
        from geotool.nir.checkpoint import load_model

        meta = load_model(cfg.model)[1]
    else:
        meta = resources_for(job)[1]
    from geotool.models.shape_rules import window_multiple

    mult = window_multiple(meta["arch"])
    window = cfg.tiling_spec(meta["window"]).window
    if window % mult:
        raise ConfigError(f"--window {window} must be a multiple of {mult} for this model")
    out_dir = Path(cfg.output) if Path(cfg.output).suffix == "" else Path(cfg.output).parent
    return run_batch(job, inputs, batch, out_dir, on_outcome=on_outcome)


def start_scene(predict_unit, meta: dict, path: str, out: Path, cfg: GenerateNIRConfig) -> "Finishing":
    """One scene through the sliding-window engine, up to its last row, into temp files: NIR in the checkpoint's
    NIR dtype and scale, the input's CRS, transform and nodata mask; optional stack and NDVI. The returned
    :class:`~geotool.io.finishing.Finishing` makes the COGs, renames them and writes the sidecar last."""
    from geotool.io.finishing import Finishing
    from geotool.io.raster import RasterSource, RasterWriter, check_sources, open_writers
    from geotool.io.tiling import run_tiled
    from geotool.nir.data import fill_invalid
    from geotool.nir.scaling import Scaling, check_matches

    nir_scaling = Scaling.from_dict(meta["nir_scaling"])
    bands = cfg.rgb_bands or meta["rgb_bands"]
    spec = cfg.tiling_spec(meta["window"])
    check_sources([path], bands, check=lambda src, p: check_matches(Scaling.from_dict(meta["rgb_scaling"]), src.dtypes[0], src.count, p))
    rgb_scaling, harmonise, unit_sample = input_transform(path, bands, meta)
    nodata = meta.get("nir_nodata")
    nir_dtype = np.dtype(nir_scaling.dtype)
    if nodata is None:
        nodata = float("nan") if nir_dtype.kind == "f" else float(np.iinfo(nir_dtype).max)
    tags = {"geotool_nir_window": str(spec.window), "geotool_nir_overlap": str(spec.overlap),
            "geotool_nir_offset": str(cfg.offset)}
    finishing = Finishing(marker=sidecar_path(out))
    # once open_writers hands it the outputs, an error (or Ctrl-C) before it is returned must drop them
    with finishing.dropped_on_error(), RasterSource(path, bands=bands) as src:
        in_dtype = np.dtype(src.dtypes[0])

        def predict(batch, valid):
            unit = harmonise.apply(rgb_scaling.to_unit(np.moveaxis(batch, 1, 0)).transpose(1, 0, 2, 3))
            return predict_unit(np.ascontiguousarray(fill_invalid(unit, valid), dtype=np.float32))

        valid_pixels = [0]  # an all-nodata scene is refused, not written as an all-nodata raster

        def finalize(blended, raw, valid):
            valid_pixels[0] += int(valid.sum())
            nir = nir_scaling.to_dtype(blended[:1], reserve=nodata)[0]
            nir = np.where(valid, nir, np.asarray(nodata).astype(nir_dtype))
            sinks = {}
            if cfg.stack:
                rgb = raw.astype(in_dtype) if in_dtype == nir_dtype else raw
                sinks["main"] = np.concatenate([np.where(valid, rgb, np.asarray(nodata).astype(nir_dtype)).astype(nir_dtype), nir[None]])
            else:
                sinks["main"] = nir
            if cfg.ndvi:
                red_unit = rgb_scaling.to_unit(raw[:1])[0]
                nir_unit = np.clip(blended[0], 0, None)
                nd = (nir_unit - red_unit) / np.maximum(nir_unit + red_unit, 1e-6)
                sinks["ndvi"] = np.where(valid, nd, NDVI_NODATA).astype(np.float32)
            return sinks

        names = (["red", "green", "blue", "nir_generated"] if cfg.stack else ["nir_generated"])
        writers = {"main": RasterWriter(out, src.grid, len(names), nir_dtype, nodata, names, tags=tags)}
        if cfg.ndvi:
            writers["ndvi"] = RasterWriter(ndvi_path(out), src.grid, 1, "float32", NDVI_NODATA, ["ndvi"], tags=tags)
        with open_writers(writers, finishing) as opened:
            stats = run_tiled(src, predict, 1, finalize, opened, spec, description=f"generate-nir {Path(src.paths[0]).name}")
            if not valid_pixels[0]:
                raise EmptyDataError(f"{path} has no valid pixel (every pixel is nodata in its RGB bands); check the scene")
        mpix = src.grid.width * src.grid.height / 1e6
    with finishing.dropped_on_error():  # the outputs wait in temp files: an error from here on must remove them
        domain = domain_report(path, unit_sample, harmonise, meta)
        res = finishing.result
        res.update({"input": str(path), "output": str(out), "windows": stats.n_windows,
                    "seconds": round(stats.total_seconds, 3), "predict_seconds": round(stats.predict_seconds, 3),
                    "megapixels_per_second": round(mpix / max(stats.total_seconds, 1e-9), 3)})
        if cfg.ndvi:
            res["ndvi"] = str(ndvi_path(out))
        if domain is not None:
            res["domain"] = domain
        res["harmonise"] = harmonise.record()
        finishing.then(lambda: write_sidecar(out, "generate-nir", cfg, inputs=[cfg.model, str(path)], results=res),
                       [sidecar_path(out)])
    return finishing


__all__ = ["GenerateNIRConfig", "GenerateNIRJob", "run_generate_nir", "CheckpointError"]

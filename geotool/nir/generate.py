"""``generate-nir``: tiled NIR generation with seamless blending, plus optional RGB+NIR stack and NDVI."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

import numpy as np
from pydantic import Field

from geotool.config import write_sidecar
from geotool.errors import CheckpointError, ConfigError, OutputError
from geotool.inference import InferenceOptions

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


def output_paths(cfg: GenerateNIRConfig) -> list[Path]:
    """Output file per input: ``--output x.tif`` for one input, else ``OUT_DIR/<stem>_nir.tif``."""
    out = Path(cfg.output)
    if out.suffix.lower() in (".tif", ".tiff"):
        if len(cfg.inputs) != 1:
            raise OutputError(f"--output {out} is a file but {len(cfg.inputs)} inputs were given; give a folder")
        return [out]
    if out.suffix:
        raise OutputError(f"--output {out}: give a .tif file or a folder")
    suffix = "_rgbn.tif" if cfg.stack else "_nir.tif"
    return [out / f"{Path(p).stem}{suffix}" for p in cfg.inputs]


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


def run_generate_nir(cfg: GenerateNIRConfig) -> list[dict]:
    """Generate NIR for every input; validate everything (model, bands, scaling, paths) before writing."""
    from geotool.io.files import require_checkpoint_file, require_file
    from geotool.io.raster import RasterSource, RasterWriter, check_sources, open_writers
    from geotool.io.tiling import run_tiled

    if cfg.model is None or not cfg.inputs or cfg.output is None:
        raise ConfigError("generate-nir needs MODEL.ckpt, at least one RGB raster and --output")
    # the paths before torch loads (seconds): a typo is said at once
    for path in cfg.inputs:
        require_file(path, "raster")
    require_checkpoint_file(cfg.model)
    outs = output_paths(cfg)

    from geotool.models.pix2pix import window_multiple
    from geotool.nir.checkpoint import load_model
    from geotool.nir.data import fill_invalid
    from geotool.nir.scaling import Scaling, check_matches

    device = cfg.torch_device()  # before the model loads: a missing GPU is said at once
    net, meta = load_model(cfg.model)
    rgb_scaling = Scaling.from_dict(meta["rgb_scaling"])
    nir_scaling = Scaling.from_dict(meta["nir_scaling"])
    bands = cfg.rgb_bands or meta["rgb_bands"]
    spec = cfg.tiling_spec(meta["window"])
    window, overlap = spec.window, spec.overlap
    mult = window_multiple(meta["arch"])
    if window % mult:
        raise ConfigError(f"--window {window} must be a multiple of {mult} for this model")
    check_sources(cfg.inputs, bands, check=lambda src, path: check_matches(rgb_scaling, src.dtypes[0], src.count, path))
    net = net.to(device)
    predict_unit = make_predict(net, device)
    nodata = meta.get("nir_nodata")
    nir_dtype = np.dtype(nir_scaling.dtype)
    if nodata is None:
        nodata = float("nan") if nir_dtype.kind == "f" else float(np.iinfo(nir_dtype).max)
    results = []
    tags = {"geotool_nir_window": str(window), "geotool_nir_overlap": str(overlap), "geotool_nir_offset": str(cfg.offset)}
    for path, out in zip(cfg.inputs, outs):
        with RasterSource(path, bands=bands) as src:
            in_dtype = np.dtype(src.dtypes[0])

            def predict(batch, valid, _s=rgb_scaling):
                unit = _s.to_unit(np.moveaxis(batch, 1, 0)).transpose(1, 0, 2, 3)
                return predict_unit(np.ascontiguousarray(fill_invalid(unit, valid), dtype=np.float32))

            def finalize(blended, raw, valid):
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

            out.parent.mkdir(parents=True, exist_ok=True)
            names = (["red", "green", "blue", "nir_generated"] if cfg.stack else ["nir_generated"])
            writers = {"main": RasterWriter(out, src.grid, len(names), nir_dtype, nodata, names, tags=tags)}
            if cfg.ndvi:
                writers["ndvi"] = RasterWriter(ndvi_path(out), src.grid, 1, "float32", NDVI_NODATA, ["ndvi"], tags=tags)
            with open_writers(writers) as opened:
                stats = run_tiled(src, predict, 1, finalize, opened, spec, description=f"generate-nir {Path(src.paths[0]).name}")
            mpix = src.grid.width * src.grid.height / 1e6
            res = {"input": str(src.paths[0]), "output": str(out), "windows": stats.n_windows,
                   "seconds": round(stats.total_seconds, 3), "predict_seconds": round(stats.predict_seconds, 3),
                   "megapixels_per_second": round(mpix / max(stats.total_seconds, 1e-9), 3)}
            if cfg.ndvi:
                res["ndvi"] = str(ndvi_path(out))
            write_sidecar(out, "generate-nir", cfg, inputs=[cfg.model, str(src.paths[0])], results=res)
            results.append(res)
    return results


__all__ = ["GenerateNIRConfig", "run_generate_nir", "CheckpointError"]

"""``evaluate-nir``: compare generated with real NIR (and per-pixel baselines) and write metrics JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Optional

import numpy as np
from pydantic import Field

from geotool.config import GeotoolConfig, write_sidecar
from geotool.errors import ConfigError, EmptyDataError, RasterMismatchError


class EvaluateNIRConfig(GeotoolConfig):
    """Settings of ``geotool evaluate-nir``."""

    generated: Optional[str] = Field(None, description="Generated NIR GeoTIFF (or RGB+NIR stack: last band is used).")
    reference: Optional[str] = Field(None, description="Reference raster holding the real RGB and NIR bands.")
    output: Optional[str] = Field(None, description="metrics .json.")
    rgb_bands: list[int | str] = Field([1, 2, 3], description="R,G,B bands of the reference.")
    nir_band: int | str = Field(4, description="NIR band of the reference.")
    generated_band: Optional[int] = Field(None, description="Band of the generated file (default: the last).")
    scaling: Literal["auto", "uint8", "reflectance10000", "float"] = Field("auto", description="Unit scale for metrics.")
    region: Literal["all", "east", "west"] = Field("all", description="Evaluate all pixels, or the east/west split of --val-fraction.")
    val_fraction: float = Field(0.3, description="East fraction of the columns (as in train-nir).")
    baseline: list[Literal["linear", "gb"]] = Field(default_factory=list, description="Per-pixel baselines to report beside the model.")
    baseline_train: Optional[str] = Field(None, description="Paired raster the baselines are fitted on (default: the reference).")
    seed: int = Field(0, description="Seed for the gradient-boosting baseline.")
    seam_width: int = Field(2, description="Pixels either side of window borders counted as 'border' in the seam check.")
    plot: Optional[str] = Field(None, description="PNG comparison: RGB | real | generated | error | NDVI (| baselines).")


def _unit(values: np.ndarray, dtype: str, kind: str) -> np.ndarray:
    """Stored values ``(bands, H, W)`` -> unit scale by the fixed rule of ``kind`` (auto: from the dtype)."""
    from geotool.nir.scaling import auto_kind, fit_scaling

    if kind == "auto":
        kind = auto_kind(dtype, values[:, ::7, ::7].reshape(-1))
    return fit_scaling(kind, np.zeros((values.shape[0], 0)), dtype).to_unit(values)


def _region(valid: np.ndarray, region: str, val_fraction: float) -> np.ndarray:
    split = int(round(valid.shape[1] * (1 - val_fraction)))
    out = valid.copy()
    if region == "east":
        out[:, :split] = False
    elif region == "west":
        out[:, split:] = False
    return out


def run_evaluate_nir(cfg: EvaluateNIRConfig) -> dict:
    """Compute the metrics (see :mod:`geotool.nir.metrics`) and write ``cfg.output``."""
    from geotool.io.files import write_json
    from geotool.io.raster import RasterSource, read_stack, read_tags
    from geotool.nir.baselines import BASELINES
    from geotool.nir.metrics import METRIC_NOTES, nir_metrics, seam_mask

    if not (cfg.generated and cfg.reference and cfg.output):
        raise ConfigError("evaluate-nir needs GENERATED.tif, REFERENCE.tif and --output metrics.json")
    if not str(cfg.output).lower().endswith(".json"):
        raise ConfigError(f"--output {cfg.output} must be a .json file")
    if len(cfg.rgb_bands) != 3:
        raise ConfigError(f"--rgb-bands takes three bands, not {cfg.rgb_bands}")
    with RasterSource(cfg.generated) as g:
        gen_band = cfg.generated_band or len(g._all_bands)
    gen = read_stack(cfg.generated, bands=[gen_band])
    ref = read_stack(cfg.reference, bands=list(cfg.rgb_bands) + [cfg.nir_band])
    diffs = ref.grid.differences(gen.grid)
    if diffs:
        raise RasterMismatchError(f"{cfg.generated} is not on the grid of {cfg.reference}: {'; '.join(diffs)}")
    valid = _region(gen.valid & ref.valid, cfg.region, cfg.val_fraction)
    if not valid.any():
        raise EmptyDataError(f"no pixel is valid in both {cfg.generated} and {cfg.reference} (region {cfg.region})")
    rgb_u = _unit(ref.data[:3], ref.dtypes[0], cfg.scaling)
    real_u = _unit(ref.data[3:], ref.dtypes[3], cfg.scaling)[0]
    fake_u = _unit(gen.data, gen.dtypes[0], cfg.scaling)[0]
    results: dict = {"model": nir_metrics(fake_u, real_u, rgb_u, valid), "notes": METRIC_NOTES, "region": cfg.region}
    tags = read_tags(cfg.generated)
    if "geotool_nir_window" in tags:
        win, ov, off = (int(tags[f"geotool_nir_{k}"]) for k in ("window", "overlap", "offset"))
        border = seam_mask(valid.shape, win, ov, off, cfg.seam_width) & valid
        interior = valid & ~border
        if border.any() and interior.any():
            err = np.abs(fake_u - real_u)
            b, i = float(err[border].mean()), float(err[interior].mean())
            results["seam_check"] = {"window": win, "overlap": ov, "border_width_px": cfg.seam_width,
                                     "border_mae": b, "interior_mae": i, "ratio": b / i if i > 0 else float("nan")}
    previews = {}
    for name in cfg.baseline:
        train_path = cfg.baseline_train or cfg.reference
        tr = ref if train_path == cfg.reference else read_stack(train_path, bands=list(cfg.rgb_bands) + [cfg.nir_band])
        tr_valid = _region(tr.valid, "west", cfg.val_fraction)
        model = BASELINES[name](seed=cfg.seed) if name == "gb" else BASELINES[name]()
        tr_rgb = _unit(tr.data[:3], tr.dtypes[0], cfg.scaling)
        tr_nir = _unit(tr.data[3:], tr.dtypes[3], cfg.scaling)[0]
        model.fit(tr_rgb[:, tr_valid], tr_nir[tr_valid])
        pred = model.predict(rgb_u)
        results[name] = nir_metrics(pred, real_u, rgb_u, valid)
        results[name]["fitted_on"] = f"{train_path} (west {1 - cfg.val_fraction:.0%} of the columns)"
        previews[name] = pred
    for name in cfg.baseline:
        m, b = results["model"]["mae"], results[name]["mae"]
        results[f"mae_ratio_model_vs_{name}"] = m / b if b > 0 else float("nan")
    write_json(cfg.output, results)
    if cfg.plot:
        from geotool.nir.plots import comparison_figure

        comparison_figure(rgb_u, real_u, fake_u, valid, previews, cfg.plot)
    write_sidecar(cfg.output, "evaluate-nir", cfg, inputs=[cfg.generated, cfg.reference], seed=cfg.seed)
    return results

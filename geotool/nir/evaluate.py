"""``evaluate-nir``: compare generated with real NIR (and per-pixel baselines) and write metrics JSON.

The rasters are read in strips of ``METRIC_STRIP_ROWS`` rows (plus the SSIM halo): memory is set by the raster
width, not by the scene. Baselines are fitted in a first pass over the training raster.
"""

from __future__ import annotations

import os
from contextlib import ExitStack
from pathlib import Path
from typing import Literal, Optional

import numpy as np
from pydantic import Field, field_validator

from geotool.batch import BatchOptions, SceneJob
from geotool.config import GeotoolConfig, sidecar_path, write_sidecar
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
    baseline_train: list[str] = Field(default_factory=list, description="Paired rasters (training scenes) the baselines are "
                                      "fitted on, pooled (default: the reference itself).")
    oracle: Optional[bool] = Field(None, description="Also fit each baseline on the reference itself (`<name>_oracle`: how "
                                   "predictable this scene is at all); default: on when --baseline-train is given.")
    seed: int = Field(0, description="Seed for the gradient-boosting baseline.")
    @field_validator("baseline_train", mode="before")
    @classmethod
    def _one_or_many(cls, value):
        return [value] if isinstance(value, (str, os.PathLike)) else (value or [])

    def baseline_names(self) -> list[str]:
        """The per-pixel models scored beside the generator: each baseline, then its oracle twin."""
        oracle = self.oracle if self.oracle is not None else bool(self.baseline_train)
        return [*self.baseline, *([f"{b}_oracle" for b in self.baseline] if oracle and self.baseline_train else [])]

    seam_width: int = Field(2, description="Pixels either side of window borders counted as 'border' in the seam check.")
    plot: Optional[str] = Field(None, description="PNG comparison: RGB | real | generated | error | NDVI (| baselines).")


class EvaluateNIRJob(SceneJob):
    """``evaluate-nir`` on one generated scene of a batch: ``<stem>_metrics.json`` (and a comparison PNG with
    --plot) in the output folder, against the reference of the same name in a reference folder (or one file)."""

    command = "evaluate-nir"

    def __init__(self, cfg: "EvaluateNIRConfig") -> None:
        self.cfg = cfg

    def metrics_path(self, scene: str) -> Path:
        return Path(self.cfg.output) / f"{Path(scene).stem}_metrics.json"

    def outputs(self, scene: str) -> list[Path]:
        path = self.metrics_path(scene)
        plot = [path.with_name(f"{Path(scene).stem}_comparison.png")] if self.cfg.plot else []
        return [path, *plot, sidecar_path(path)]

    def run(self, resources, scene: str) -> dict:
        from geotool.batch.paths import reference_for

        path = self.metrics_path(scene)
        update = {"generated": scene, "reference": reference_for(scene, self.cfg.reference, ("_nir", "_rgbn")), "output": str(path),
                  "plot": str(path.with_name(f"{Path(scene).stem}_comparison.png")) if self.cfg.plot else None}
        res = run_evaluate_nir(self.cfg.model_copy(update=update))
        return {"generated": scene, "reference": update["reference"], **res}


def run_evaluate_nir_batch(cfg: "EvaluateNIRConfig", scenes: list[str], batch: BatchOptions | None = None,
                           on_outcome=None):
    """Evaluate several generated scenes into the folder ``cfg.output`` (skip-existing, shards, keep-going,
    Dask workers); unsharded runs add ``metrics.json``: every scene's figures and their pixel-weighted means."""
    from geotool.batch import run_batch
    from geotool.batch.paths import require_output_folder, require_reference
    from geotool.io.files import read_json, write_json

    batch = batch or BatchOptions()
    out = require_output_folder(cfg.output, several="generated scenes")
    require_reference(cfg.reference, "reference raster")
    job = EvaluateNIRJob(cfg)
    result = run_batch(job, sorted(scenes), batch, out, on_outcome=on_outcome)
    done = result.finished
    if done and batch.shard is None:
        per_scene = {s: read_json(job.metrics_path(s)) for s in done}
        result.pooled = {"scenes": per_scene, "mean": pooled_means(list(per_scene.values()), ["model", *cfg.baseline_names()])}
        write_json(out / "metrics.json", result.pooled)
    return result


def pooled_means(records: list[dict], names: list[str]) -> dict:
    """Pixel-weighted means over scenes of each model's MAE, SSIM and NDVI MAE, and the pooled RMSE."""
    means = {}
    for name in names:
        rows = [r[name] for r in records if name in r and r[name].get("n_pixels")]
        n = sum(r["n_pixels"] for r in rows)
        if not n:
            continue
        avg = lambda key: sum(r[key] * r["n_pixels"] for r in rows if r.get(key) is not None) / n  # noqa: E731
        means[name] = {"mae": avg("mae"), "rmse": float(np.sqrt(sum(r["rmse"] ** 2 * r["n_pixels"] for r in rows) / n)),
                       "ssim": avg("ssim") if all(r.get("ssim") is not None for r in rows) else None,
                       "ndvi_mae": avg("ndvi_mae") if all(r.get("ndvi_mae") is not None for r in rows) else None,
                       "n_pixels": n}
    return means


METRIC_STRIP_ROWS = 256  # rows per strip (~250 bytes of working memory per pixel of a strip, plus a 3-row SSIM halo)
PREVIEW_PX = 1000  # longest side (pixels) of the decimated copy drawn by --plot
AUTO_SAMPLE_STEP = 7  # --scaling auto on float data: sample every 7th row and column...
AUTO_SAMPLE_MAX = 1_000_000  # ...coarser when that would exceed this many values per band


def _sample(src, bands: slice) -> np.ndarray:
    """Stored values of ``src``'s selected ``bands`` at every ``AUTO_SAMPLE_STEP``-th row and column, flattened
    (the sample ``--scaling auto`` always used; a coarser step when it would exceed ``AUTO_SAMPLE_MAX`` values
    per band, i.e. above 49 Mpx)."""
    from rasterio.windows import Window

    h, w = src.grid.shape
    step = max(AUTO_SAMPLE_STEP, int(np.ceil(np.sqrt(h * w / AUTO_SAMPLE_MAX))))
    rows = [src.read(Window(0, r, w, 1))[0][bands, 0, ::step] for r in range(0, h, step)]
    return np.stack(rows, axis=1).reshape(-1)


def _scaling(src, bands: slice, kind: str):
    """Stored -> unit :class:`~geotool.nir.scaling.Scaling` of ``src``'s selected ``bands`` by the fixed rule
    of ``kind`` (auto: from the dtype of the first band; float data also from :func:`_sample`)."""
    from geotool.nir.scaling import auto_kind, fit_scaling

    dtype = src.dtypes[bands.start]
    if kind == "auto":
        kind = auto_kind(dtype, _sample(src, bands) if np.dtype(dtype).kind == "f" else None)
    return fit_scaling(kind, np.zeros((len(src.bands[bands]), 0)), dtype)


class _RGBN:
    """A raster's RGB and NIR bands (selected in that order), read by window in unit scale."""

    def __init__(self, src, kind: str) -> None:
        self.src, self.grid = src, src.grid
        self.rgb_scaling, self.nir_scaling = _scaling(src, slice(0, 3), kind), _scaling(src, slice(3, 4), kind)

    def read(self, window) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """RGB ``(3, rows, cols)`` and NIR ``(rows, cols)`` float32 unit scale, and the validity mask."""
        data, valid = self.src.read(window)
        return self.rgb_scaling.to_unit(data[:3]), self.nir_scaling.to_unit(data[3:])[0], valid


def _region(valid: np.ndarray, region: str, val_fraction: float) -> np.ndarray:
    """``valid`` ``(rows, W)`` of full-width rows, restricted to the east/west split of the columns."""
    split = int(round(valid.shape[1] * (1 - val_fraction)))
    out = valid.copy()
    if region == "east":
        out[:, :split] = False
    elif region == "west":
        out[:, split:] = False
    return out


def _fit_baselines(cfg: EvaluateNIRConfig, ref: _RGBN, strip_rows: int) -> dict:
    """Fit ``cfg.baseline`` on the west region of the training rasters (pooled; each scene's scaling its own),
    streamed strip by strip; ``<name>_oracle`` on the west of the reference itself when asked."""
    from geotool.io.raster import RasterSource
    from geotool.nir.baselines import BASELINES

    names = cfg.baseline_names()
    if not names:
        return {}
    models = {name: BASELINES[name.removesuffix("_oracle")](seed=cfg.seed) if name.startswith("gb")
              else BASELINES[name.removesuffix("_oracle")]() for name in names}
    trained = {n: m for n, m in models.items() if not n.endswith("_oracle")}
    oracles = {n: m for n, m in models.items() if n.endswith("_oracle")}
    with ExitStack() as stack:
        for path in cfg.baseline_train or [cfg.reference]:
            train = ref if path == cfg.reference else _RGBN(
                stack.enter_context(RasterSource(path, bands=list(cfg.rgb_bands) + [cfg.nir_band])), cfg.scaling)
            _feed_west(train, trained, cfg.val_fraction, strip_rows)
        if oracles:
            _feed_west(ref, oracles, cfg.val_fraction, strip_rows)
    return {name: model.finish() for name, model in models.items()}


def _feed_west(train: "_RGBN", models: dict, val_fraction: float, strip_rows: int) -> None:
    """Offer the valid pixels of ``train``'s west region (train-nir's training part) to every model."""
    from geotool.io.components import strip_windows

    for window in strip_windows(train.grid, strip_rows):
        rgb, nir, valid = train.read(window)
        west = _region(valid, "west", val_fraction)
        for model in models.values():
            model.add(rgb[:, west], nir[west])


class _Preview:
    """Every ``step``-th row and column of the panels (longest side at most ``PREVIEW_PX``), for ``--plot``."""

    def __init__(self, shape: tuple[int, int]) -> None:
        self.step = max(1, -(-max(shape) // PREVIEW_PX))
        self.parts: list[tuple] = []

    def add(self, row_off: int, rgb, real, fake, valid, preds: dict) -> None:
        """Keep the decimated rows of a strip (arrays of the strip's own rows, starting at scene row ``row_off``)."""
        take = lambda a: a[..., -row_off % self.step :: self.step, :: self.step].copy()  # noqa: E731 - not a view of the strip
        self.parts.append((take(rgb), take(real), take(fake), take(valid), {k: take(v) for k, v in preds.items()}))

    def write(self, path: str) -> None:
        """The comparison figure, cropped to the bounding box of the evaluated pixels."""
        from geotool.nir.plots import comparison_figure

        rgb, real, fake, valid = (np.concatenate([p[i] for p in self.parts], axis=-2) for i in range(4))
        preds = {k: np.concatenate([p[4][k] for p in self.parts]) for k in self.parts[0][4]}
        rows, cols = (np.flatnonzero(valid.any(axis)) for axis in (1, 0))
        if rows.size:
            box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
            rgb, real, fake, valid = rgb[(slice(None), *box)], real[box], fake[box], valid[box]
            preds = {k: v[box] for k, v in preds.items()}
        comparison_figure(rgb, real, fake, valid, preds, path)


def _seam_spec(path: str) -> tuple[int, int, int] | None:
    """(window, overlap, offset) of the tiling that generated ``path`` (from its tags), if recorded."""
    from geotool.io.raster import read_tags

    tags = read_tags(path)
    if "geotool_nir_window" not in tags:
        return None
    return tuple(int(tags[f"geotool_nir_{k}"]) for k in ("window", "overlap", "offset"))


def _seam_check(spec: tuple[int, int, int], width: int, sums: np.ndarray) -> dict | None:
    """The ``seam_check`` record from ``sums`` = (border |error| sum, border pixels, interior sum, interior pixels)."""
    if not (sums[1] and sums[3]):
        return None
    b, i = sums[0] / sums[1], sums[2] / sums[3]
    return {"window": spec[0], "overlap": spec[1], "border_width_px": width,
            "border_mae": float(b), "interior_mae": float(i), "ratio": float(b / i) if i > 0 else float("nan")}


def run_evaluate_nir(cfg: EvaluateNIRConfig, strip_rows: int | None = None) -> dict:
    """Compute the metrics (see :mod:`geotool.nir.metrics`) over strips of ``strip_rows`` rows (default
    ``METRIC_STRIP_ROWS``) and write ``cfg.output``."""
    from geotool.io.files import write_json
    from geotool.io.raster import RasterSource

    if not (cfg.generated and cfg.reference and cfg.output):
        raise ConfigError("evaluate-nir needs GENERATED.tif, REFERENCE.tif and --output metrics.json")
    if not str(cfg.output).lower().endswith(".json"):
        raise ConfigError(f"--output {cfg.output} must be a .json file")
    if len(cfg.rgb_bands) != 3:
        raise ConfigError(f"--rgb-bands takes three bands, not {cfg.rgb_bands}")
    with ExitStack() as stack:
        with RasterSource(cfg.generated) as g:
            gen_band = cfg.generated_band or g.total_band_count
        gen = stack.enter_context(RasterSource(cfg.generated, bands=[gen_band]))
        ref = stack.enter_context(RasterSource(cfg.reference, bands=list(cfg.rgb_bands) + [cfg.nir_band]))
        diffs = ref.grid.differences(gen.grid)
        if diffs:
            raise RasterMismatchError(f"{cfg.generated} is not on the grid of {cfg.reference}: {'; '.join(diffs)}")
        ref_units, strip_rows = _RGBN(ref, cfg.scaling), strip_rows or METRIC_STRIP_ROWS
        models = _fit_baselines(cfg, ref_units, strip_rows)
        results, preview = _metric_pass(cfg, gen, ref_units, models, strip_rows)
    west = f"(west {1 - cfg.val_fraction:.0%} of the columns)"
    for name in cfg.baseline_names():
        fitted = [cfg.reference] if name.endswith("_oracle") else (cfg.baseline_train or [cfg.reference])
        results[name]["fitted_on"] = f"{', '.join(map(str, fitted))} {west}"
        m, b = results["model"]["mae"], results[name]["mae"]
        results[f"mae_ratio_model_vs_{name}"] = m / b if b > 0 else float("nan")
    write_json(cfg.output, results)
    if cfg.plot:
        preview.write(cfg.plot)
    write_sidecar(cfg.output, "evaluate-nir", cfg, inputs=[cfg.generated, cfg.reference, *cfg.baseline_train], seed=cfg.seed)
    return results


def _metric_pass(cfg: EvaluateNIRConfig, gen, ref: _RGBN, models: dict, strip_rows: int) -> tuple[dict, _Preview | None]:
    """One pass over generated and reference strips (with the SSIM halo): the metrics of the model and of each
    baseline, the seam check, and the decimated preview when ``cfg.plot`` is set.

    Raises:
        EmptyDataError: no pixel is valid in both rasters within the region.
    """
    from rasterio.windows import Window

    from geotool.io.components import strip_windows
    from geotool.nir.metrics import METRIC_NOTES, StripMetrics, halo_rows, seam_mask

    grid, gen_scaling, spec = ref.grid, _scaling(gen, slice(0, 1), cfg.scaling), _seam_spec(cfg.generated)
    accs = {name: StripMetrics() for name in ["model", *models]}
    seam_sums = np.zeros(4)
    preview = _Preview(grid.shape) if cfg.plot else None
    for window in strip_windows(grid, strip_rows):
        row_off, rows = int(window.row_off), int(window.height)
        start, stop, keep = halo_rows(row_off, rows, grid.height)
        block = Window(0, start, grid.width, stop - start)
        data, gen_valid = gen.read(block)
        fake = gen_scaling.to_unit(data)[0]
        rgb, real, ref_valid = ref.read(block)
        valid = _region(gen_valid & ref_valid, cfg.region, cfg.val_fraction)
        preds = {name: model.predict(rgb) for name, model in models.items()}
        for name, acc in accs.items():
            acc.add(preds.get(name, fake), real, rgb, valid, keep)
        if spec:
            border = seam_mask(grid.shape, *spec, cfg.seam_width, rows=(row_off, row_off + rows)) & valid[keep]
            err, interior = np.abs(fake[keep] - real[keep]), valid[keep] & ~border
            seam_sums += (err[border].astype(np.float64).sum(), border.sum(),
                          err[interior].astype(np.float64).sum(), interior.sum())
        if preview:
            preview.add(row_off, rgb[:, keep], real[keep], fake[keep], valid[keep], {k: v[keep] for k, v in preds.items()})
    if not accs["model"].sums.s["n"]:
        raise EmptyDataError(f"no pixel is valid in both {cfg.generated} and {cfg.reference} (region {cfg.region})")
    results: dict = {"model": accs["model"].result(), "notes": METRIC_NOTES, "region": cfg.region}
    seam = _seam_check(spec, cfg.seam_width, seam_sums) if spec else None
    if seam:
        results["seam_check"] = seam
    return results | {name: accs[name].result() for name in models}, preview

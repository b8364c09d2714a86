"""``oba-augment``: K composed scenes as GeoTIFF image + mask, object polygons, a manifest and a contact sheet.

Everything is validated (files, bands, label overlap, object bank, backgrounds) before the first output is
written; each output is written atomically.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from geotool.batch import BatchOptions, BatchResult, SceneJob
from geotool.errors import BandError, ConfigError, EmptyDataError, GeotoolError, NoOverlapError
from geotool.labels import CLASS_COLUMN, assign_classes, class_mapping  # noqa: F401 - class_mapping: public here too
from geotool.oba.backgrounds import AUTO_LABEL_FRACTIONS, BackgroundWindow, mine_windows
from geotool.oba.bank import ObjectBank, extract_objects, require_objects
from geotool.oba.compose import Composite, compose_scene
from geotool.oba.config import OBAAugmentConfig, OBAConfig

log = logging.getLogger("geotool.oba")

RASTER_LABEL_SUFFIXES = (".tif", ".tiff", ".vrt", ".img")


@dataclass
class OBAResult:
    """What ``run_oba_augment`` wrote."""

    output: Path
    scenes: int
    objects: int
    skipped: int
    bank_size: int
    backgrounds: int
    batch: BatchResult | None = None


def read_labels(labels: Path, grid, cfg: OBAConfig, mapping: dict | None, raster_name: str):
    """Labels of one scene in its CRS with ``CLASS_COLUMN`` (1..254) and ``_height`` columns."""
    gdf = _label_frame(labels, cfg, grid)
    if gdf.crs != grid.crs:
        gdf = gdf.to_crs(grid.crs)
    return _attach(gdf, labels, cfg, mapping)


def _label_frame(labels: Path, cfg: OBAConfig, grid=None):
    from geotool.io.vector import read_vector

    if labels.suffix.lower() in RASTER_LABEL_SUFFIXES:
        from geotool.io.raster import RasterSource
        from geotool.io.vector import vectorize

        with RasterSource(labels) as msrc:
            data, valid = msrc.read()
            nd = msrc.nodata[0]
            if nd is not None:
                valid &= data[0] != nd
            gdf = vectorize(data[0].astype(np.int32), msrc.grid, valid=valid & (data[0] != cfg.ignore_index))
        return gdf
    return read_vector(labels, target=grid, require_overlap=False)


def _attach(gdf, labels: Path, cfg: OBAConfig, mapping: dict | None):
    gdf = gdf[gdf.geom_type.isin(["Polygon", "MultiPolygon"])].copy()
    gdf = assign_classes(gdf, labels, _class_attr(labels, cfg), mapping or {})
    h = cfg.shadows.height_attribute
    gdf["_height"] = gdf[h].astype(float) if (h and cfg.shadows.enabled) else np.nan
    return gdf.reset_index(drop=True)


def _class_attr(labels: Path, cfg: OBAConfig) -> str | None:
    if labels.suffix.lower() in RASTER_LABEL_SUFFIXES:
        return "class_id"
    return cfg.class_attribute


def validate_label_columns(labels: Path, cfg: OBAConfig):
    """Read the labels once (own CRS): check attributes, return the class mapping."""
    gdf = _label_frame(labels, cfg)
    attr = _class_attr(labels, cfg)
    for col, opt in ((attr, "--class-attribute"), (cfg.shadows.height_attribute if cfg.shadows.enabled else None, "shadows.height_attribute")):
        if col is not None and col not in gdf.columns:
            cols = [c for c in gdf.columns if c != gdf.geometry.name]
            raise ConfigError(f"{labels} has no attribute {col!r} ({opt}); available: {', '.join(map(str, cols))}")
    if len(gdf) == 0:
        raise EmptyDataError(f"{labels} holds no polygon; give labels with at least one object")
    return class_mapping(gdf[attr].tolist(), attr, labels) if attr else {}


def resolve_classes(classes, mapping: dict, labels) -> set[int]:
    """Class ids for ``paste_classes`` entries given as ids or as attribute values (names)."""
    ids = set(mapping.values()) if mapping else {1}
    by_name = {str(k): v for k, v in mapping.items()}
    out = set()
    for c in classes:
        if str(c) in by_name:
            out.add(by_name[str(c)])
        elif isinstance(c, int) and c in ids:
            out.add(c)
        else:
            known = ", ".join(sorted(by_name)) or "1"
            raise ConfigError(f"paste class {c!r} does not occur in {labels}; known classes: {known}")
    return out


def build_scene_bank(images: Sequence[Path], labels: Path, cfg: OBAConfig):
    """Open every scene, read its labels and bank its objects. Returns (sources, label frames, bank, mapping)."""
    from geotool.io.raster import RasterSource

    mapping = validate_label_columns(labels, cfg)
    sources, frames = [], []
    bank = ObjectBank()
    try:
        for path in images:
            src = RasterSource(path, bands=cfg.bands)
            sources.append(src)
            if sources[0].count != src.count:
                raise BandError(
                    f"{path} has {src.count} selected band(s) but {sources[0].paths[0]} has {sources[0].count}; "
                    "give scenes with the same bands or select them with --bands"
                )
            gdf = read_labels(labels, src.grid, cfg, mapping, str(path))
            from shapely.geometry import box

            if len(gdf):
                gdf = gdf[gdf.intersects(box(*src.grid.bounds))].reset_index(drop=True)
            frames.append(gdf)
            extract_objects(
                src, gdf, gdf[CLASS_COLUMN].to_numpy(), path.name, heights=gdf["_height"].to_numpy(),
                min_pixels=cfg.min_object_pixels, bank=bank,
            )
        if not any(len(g) for g in frames):
            names = ", ".join(str(p) for p in images)
            raise NoOverlapError(f"{labels} does not overlap {names} after reprojection; check that they cover the same area")
        if cfg.paste_classes is not None:
            wanted = resolve_classes(cfg.paste_classes, mapping, labels)
            bank.objects = [o for o in bank.objects if o.class_id in wanted]
        require_objects(bank, ", ".join(str(p) for p in images))
    except BaseException:
        for src in sources:
            src.close()
        raise
    return sources, frames, bank, mapping


def run_oba_augment(cfg: OBAAugmentConfig, batch: BatchOptions | None = None, on_outcome=None) -> OBAResult:
    """Compose ``cfg.n`` scenes and write them with their masks, polygons, manifest and contact sheet.

    Each output scene is one unit of a batch (skip-existing, shards, keep-going, Dask workers): scene ``k``
    draws its background window and its own seed from ``cfg.seed`` alone, so it is the same file whichever
    process writes it and whatever ``n`` is.

    ``cfg``: the composition settings and the run's ``images`` (labelled scenes; objects are cut out of
    them), ``labels`` (polygons with ``class_attribute`` in any CRS, reprojected per scene, or a class-mask
    GeoTIFF), ``backgrounds`` (extra label-free GeoTIFFs, same bands), ``seed`` and ``output``: the folder for
    ``scene_XXXX.tif``, ``scene_XXXX_mask.tif``, ``scene_XXXX_objects.gpkg``, ``scene_XXXX.json`` (its
    placements), ``manifest.csv``/``manifest.json``, ``contact_sheet.png`` and ``geotool.json``. Scenes of an
    earlier run beyond ``n`` are removed: the folder holds one run.
    """
    from geotool.batch import run_batch
    from geotool.batch.job import resources_for
    from geotool.batch.paths import require_output_folder
    from geotool.io.files import expand_inputs, require_file

    batch = batch or BatchOptions()
    if not cfg.images or cfg.labels is None or cfg.output is None:
        raise ConfigError("oba-augment needs --images, --labels and --output")
    n = cfg.n
    out = require_output_folder(cfg.output)
    image_paths = [str(p) for p in expand_inputs(cfg.images)]
    bg_paths = [str(p) for p in expand_inputs(cfg.backgrounds)] if cfg.backgrounds else []
    labels = str(require_file(cfg.labels, "labels file"))
    if not cfg.mine_backgrounds and not bg_paths:
        raise ConfigError("mine_backgrounds is off and no --backgrounds given; give background GeoTIFFs or turn mining on")
    job = OBAJob(cfg.composition(), image_paths, labels, bg_paths, cfg.seed, out)
    prepared = resources_for(job)  # inputs checked and the bank built once here (workers build their own)
    result = run_batch(job, [scene_name(k) for k in range(n)], batch, out, on_outcome=on_outcome)
    done = result.finished
    records = [job.record(s) for s in done]
    rows = [row for r in records for row in r["rows"]]
    skipped = sum(r["skipped"] for r in records)
    if done and batch.shard is None:  # shards share the folder: an unsharded --skip-existing rerun assembles it
        _write_run_files(job, prepared, done, rows, skipped, n, cfg.contact_sheet)
    return OBAResult(out, len(done), len(rows), skipped, len(prepared.bank), len(prepared.windows), result)


def scene_name(k: int) -> str:
    """``scene_0007``: the stem of output scene ``k``."""
    return f"scene_{k:04d}"


@dataclass
class _Prepared:
    """What every scene of a run shares: open sources, label frames, the object bank, background windows,
    the class mapping, and each scene's (window, seed) plan."""

    sources: list
    frames: list
    bank: Any
    windows: list
    mapping: dict
    fingerprint: str
    _plan: list = field(default_factory=list)
    _master: Any = None

    def plan(self, k: int, seed: int) -> tuple[Any, int]:
        """Scene ``k``'s background window and seed: the k-th pair of draws from ``seed``, in the order one
        loop over the scenes draws them (window index, then scene seed)."""
        if self._master is None:
            self._master = np.random.default_rng(seed)
        while len(self._plan) <= k:
            w = int(self._master.integers(len(self.windows)))
            self._plan.append((w, int(self._master.integers(2**63 - 1))))
        w, scene_seed = self._plan[k]
        return self.windows[w], scene_seed


class OBAJob(SceneJob):
    """``oba-augment``: one composed scene (image, mask, objects, placements) per unit."""

    command = "oba-augment"

    def __init__(self, cfg: OBAConfig, images: list[str], labels: str, backgrounds: list[str], seed: int, output: Path) -> None:
        self.cfg, self.images, self.labels, self.backgrounds, self.seed, self.output = cfg, images, labels, backgrounds, seed, output

    def cache_key(self) -> str:
        return f"{self.command}:{self.fingerprint()}"

    def fingerprint(self) -> str:
        """Settings, seed and inputs (paths, sizes, modification times): scenes with the same fingerprint
        are the same files, so --skip-existing may keep them; any other run's scenes are redone."""
        import hashlib
        import json

        files = [self.labels, *self.images, *self.backgrounds]
        stamp = [(f, os.stat(f).st_size, os.stat(f).st_mtime_ns) for f in files]
        text = json.dumps([self.cfg.model_dump(mode="json"), self.seed, stamp], sort_keys=True, default=str)
        return hashlib.sha1(text.encode()).hexdigest()

    def outputs(self, scene: str) -> list[Path]:
        o = self.output
        return [o / f"{scene}.tif", o / f"{scene}_mask.tif", o / f"{scene}_objects.gpkg", o / f"{scene}.json"]

    def is_finished(self, scene: str) -> bool:
        """Its files exist and were written by a run with these settings, seed and inputs."""
        from geotool.io.files import read_json

        if not all(p.exists() for p in self.outputs(scene)):
            return False
        try:
            return read_json(self.output / f"{scene}.json").get("fingerprint") == self.fingerprint()
        except GeotoolError:
            return False

    def record(self, scene: str) -> dict:
        """The placements file of a written scene."""
        from geotool.io.files import read_json

        return read_json(self.output / f"{scene}.json")

    def setup(self) -> _Prepared:
        return _prepare(self.images, self.labels, self.backgrounds, self.cfg, self.fingerprint())

    def run(self, prepared: _Prepared, scene: str) -> dict:
        return _write_scene(prepared, scene, self.output, self.cfg, self.seed)


def _prepare(image_paths, labels, bg_paths, cfg: OBAConfig, fingerprint: str) -> _Prepared:
    """Open the scenes, read the labels, build the bank and mine background windows (every check up front)."""
    from geotool.io.raster import RasterSource

    sources, frames, bank, mapping = build_scene_bank([Path(p) for p in image_paths], Path(labels), cfg)
    bg_sources = []
    try:
        for path in bg_paths:
            bsrc = RasterSource(path, bands=cfg.bands)
            bg_sources.append(bsrc)
            if bsrc.count != sources[0].count:
                raise BandError(
                    f"background {path} has {bsrc.count} selected band(s) but the scenes have {sources[0].count} "
                    f"({sources[0].paths[0]}); give backgrounds with the same bands or select them with --bands"
                )
        all_sources = sources + bg_sources
        _check_units(all_sources, cfg)
        windows = _background_windows(sources, frames, bg_sources, cfg)
        if not windows:
            tried = cfg.max_label_fraction if cfg.max_label_fraction is not None else AUTO_LABEL_FRACTIONS[-1]
            raise EmptyDataError(
                f"no background window of {cfg.scene_size} px found in "
                f"{', '.join(str(s.paths[0]) for s in all_sources)} (buffer {cfg.background_buffer} px, "
                f"min valid {cfg.min_valid_fraction:g}, at most {tried:.0%} labelled pixels); give --backgrounds "
                "or a smaller --scene-size"
            )
    except BaseException:
        for src in sources + bg_sources:
            src.close()
        raise
    log.info("object bank: %d objects (%.2f MiB); %d background windows", len(bank), bank.nbytes / 2**20, len(windows))
    return _Prepared(all_sources, frames, bank, windows, mapping, fingerprint)


def _background_windows(sources, frames, bg_sources, cfg: OBAConfig) -> list[BackgroundWindow]:
    """Background windows mined from the scenes (away from their labels) and from the background rasters.

    With ``max_label_fraction`` None, strictly label-free windows are preferred and the allowed labelled
    fraction rises through ``AUTO_LABEL_FRACTIONS`` only when none is found, with a note (labelled pixels of
    a background stay in its mask, and pasted objects avoid them).
    """
    fractions = AUTO_LABEL_FRACTIONS if cfg.max_label_fraction is None else (cfg.max_label_fraction,)
    for fraction in fractions:
        windows: list[BackgroundWindow] = []
        if cfg.mine_backgrounds:
            for i, (src, gdf) in enumerate(zip(sources, frames)):
                windows += mine_windows(src, i, gdf, cfg, fraction)
        for j, bsrc in enumerate(bg_sources):
            windows += mine_windows(bsrc, len(sources) + j, None, cfg, fraction)
        if windows:
            if fraction > 0 and cfg.max_label_fraction is None:
                log.warning("no label-free %d-px background window in the scenes: using %d window(s) with up to %.0f%% "
                            "labelled pixels (kept in the masks); --max-label-fraction 0 refuses instead",
                            cfg.scene_size, len(windows), 100 * fraction)
            return windows
    return []


def _check_units(sources, cfg: OBAConfig) -> None:
    """Pixel sizes are compared across scenes (resampling) and shadows need metres: refuse mixed units."""
    from geotool.errors import CRSError

    geographic = [s for s in sources if s.grid.crs is not None and s.grid.crs.is_geographic]
    if geographic and len(geographic) != len(sources):
        raise CRSError(
            f"{geographic[0].paths[0]} is in degrees while other scenes are projected, so pixel sizes cannot be "
            "compared for resampling; reproject every scene to one projected CRS (e.g. its UTM zone)"
        )
    if geographic and cfg.shadows.enabled:
        raise CRSError(
            f"{geographic[0].paths[0]} is in a geographic CRS (degrees); shadow lengths need metres: reproject "
            "it to a projected CRS or turn shadows off"
        )


def _cast(image: np.ndarray, dtype: np.dtype, valid: np.ndarray, nodata: float | None) -> np.ndarray:
    """Round/clip to ``dtype``; a valid pixel that jitter or a shadow turned into ``nodata`` is nudged by one."""
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        out = np.clip(np.rint(image), info.min, info.max).astype(dtype)
    else:
        out = image.astype(dtype)
    if nodata is not None and np.isfinite(nodata):
        clash = (out == np.asarray(nodata, dtype=dtype)) & valid[None]
        if clash.any():
            step = 1 if dtype.kind in "iu" else max(abs(float(nodata)) * 1e-6, 1e-6)
            up = dtype.kind not in "iu" or nodata + 1 <= np.iinfo(dtype).max
            out[clash] = np.asarray(nodata + step if up else nodata - step, dtype=dtype)
    return out


def _write_scene(prepared: _Prepared, stem: str, output: Path, cfg: OBAConfig, seed: int) -> dict:
    """Compose scene ``stem`` and write its image, mask, objects and placements (``<stem>.json``, last)."""
    from rasterio.windows import Window

    from geotool.io.files import write_json
    from geotool.io.raster import write_raster
    from geotool.io.vector import rasterize, vectorize, write_vector

    bank, frames, sources = prepared.bank, prepared.frames, prepared.sources
    bw, scene_seed = prepared.plan(int(stem.rsplit("_", 1)[1]), seed)
    rng = np.random.default_rng(scene_seed)
    src = sources[bw.source]
    window = Window(bw.col, bw.row, bw.width, bw.height)
    grid = src.grid.window_grid(window)
    data, valid = src.read(window)
    existing = None
    if bw.source < len(frames) and len(frames[bw.source]):
        gdf = frames[bw.source]
        existing = rasterize(gdf, src.grid, window=window, values=gdf[CLASS_COLUMN].to_numpy(), dtype="uint8").astype(np.int64)
    comp = compose_scene(data, valid, existing, bank, rng, cfg, float(np.mean(grid.res)), bank.by_class())
    names = {v: k for k, v in prepared.mapping.items()} if prepared.mapping else {1: "object"}
    nodata = src.nodata[0]
    write_raster(output / f"{stem}.tif", _cast(comp.image, src.dtype, valid, nodata), grid, nodata=nodata, band_names=src.band_names)
    write_raster(output / f"{stem}_mask.tif", comp.mask.astype(np.uint8), grid, nodata=cfg.ignore_index)
    write_vector(_polygons(comp, grid, names, vectorize), output / f"{stem}_objects.gpkg")
    rows = [{"scene": stem, "scene_seed": scene_seed, "background": str(src.paths[0]), "window_col": bw.col,
             "window_row": bw.row, "crs": str(grid.crs), **p} for p in comp.placements]
    record = {"fingerprint": prepared.fingerprint, "scene_seed": scene_seed, "skipped": comp.skipped, "rows": rows}
    write_json(output / f"{stem}.json", record)
    return {"scene": stem, "objects": len(rows), "skipped": comp.skipped}


def _write_run_files(job: OBAJob, prepared: _Prepared, scenes: list[str], rows: list[dict], skipped: int, n: int,
                     contact_sheet: bool) -> None:
    """Manifest, contact sheet and sidecar of the whole run; scenes an earlier run left beyond ``n`` removed."""
    import pandas as pd

    from geotool.config import write_sidecar
    from geotool.io.files import write_json, write_table

    output, cfg = job.output, job.cfg
    _remove_stale_scenes(output, n)
    write_table(output / "manifest.csv", pd.DataFrame(rows))
    write_json(output / "manifest.json", {"seed": job.seed, "class_ids": {str(k): v for k, v in prepared.mapping.items()},
                                          "objects": rows})
    if contact_sheet:
        from geotool.oba.preview import contact_sheet as sheet

        sheet([_scene_preview(output, s) for s in scenes[:16]], output / "contact_sheet.png", cfg.ignore_index)
    write_sidecar(
        output, "oba-augment", cfg, inputs=[*job.images, *job.backgrounds, job.labels], seed=job.seed,
        results={"scenes": len(scenes), "objects_pasted": len(rows), "objects_skipped": skipped, "bank_size": len(prepared.bank),
                 "bank_megabytes": round(prepared.bank.nbytes / 2**20, 3), "background_windows": len(prepared.windows)},
    )


def _remove_stale_scenes(output: Path, n: int) -> None:
    """Delete ``scene_XXXX*`` files with an index >= ``n`` (an earlier, larger run into the same folder)."""
    import re

    stale = re.compile(r"^scene_(\d+)(_mask\.tif|_objects\.gpkg|\.tif|\.json)$")
    for path in output.iterdir():
        m = stale.match(path.name)
        if m and int(m.group(1)) >= n:
            path.unlink()
            log.info("removed %s (a scene of an earlier run beyond -n %d)", path, n)


def _scene_preview(output: Path, stem: str):
    """``(name, image, mask, valid, instances)`` of a written scene for the contact sheet, read from its files."""
    from geotool.io.raster import RasterSource
    from geotool.io.vector import rasterize, read_vector

    with RasterSource(output / f"{stem}.tif") as src:
        image, valid = src.read()
        grid = src.grid
    with RasterSource(output / f"{stem}_mask.tif") as src:
        mask = src.read(dtype="int64")[0][0]
    objects = read_vector(output / f"{stem}_objects.gpkg")
    instances = (rasterize(objects, grid, values=objects["instance"].to_numpy(), fill=0, dtype="int32")
                 if len(objects) else np.zeros(grid.shape, np.int32))
    return stem, image, mask, valid, instances


def _polygons(comp: Composite, grid, names: dict[int, Any], vectorize):
    gdf = vectorize(comp.instances, grid, background=0)
    gdf = gdf.rename(columns={"class_id": "instance"})
    by_inst = {p["instance"]: p for p in comp.placements}
    gdf["class_id"] = [by_inst[i]["class_id"] for i in gdf["instance"]]
    gdf["class_name"] = [str(names.get(c, c)) for c in gdf["class_id"]]
    gdf["source"] = [by_inst[i]["source"] for i in gdf["instance"]]
    gdf["object_id"] = [by_inst[i]["object_id"] for i in gdf["instance"]]
    return gdf

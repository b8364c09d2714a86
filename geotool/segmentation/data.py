"""Training scenes for segmentation: images + labels (vectors or mask rasters) on each image's grid, read window
by window (see :mod:`geotool.io.windows`): the label file is read once, each scene keeps only its own features."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from geotool.errors import ConfigError, EmptyDataError, NoOverlapError, RasterMismatchError
from geotool.labels import CLASS_COLUMN, assign_classes  # class id of each label polygon in TrainScene.labels
from geotool.training.sampler import TrainScene
from geotool.io.windows import CACHE_MB
from geotool.training.split import split_blocks

log = logging.getLogger(__name__)
VECTOR_EXT = (".gpkg", ".geojson", ".json", ".shp")
#: Side of the cells, pixels, on which validity is checked and positive (foreground) areas are indexed.
CELL = 32


def is_vector(path: str | Path) -> bool:
    """True for GeoPackage / GeoJSON / shapefile paths."""
    return Path(path).suffix.lower() in VECTOR_EXT


def label_values(gdf, path, class_attribute: str | None, class_map: dict[str, int]) -> tuple[object, np.ndarray]:
    """Filter features to mapped classes and return ``(gdf, class ids)`` (:func:`geotool.labels.assign_classes`
    with the configured ``class_map``)."""
    if class_attribute is not None and not class_map and class_attribute in gdf.columns:
        raise ConfigError(f"class_attribute {class_attribute!r} needs a class_map (value -> class id) in the config")
    out = assign_classes(gdf, path, class_attribute, class_map)
    if class_attribute is not None and out.empty:
        found = sorted(set(gdf[class_attribute].astype(str)))[:10]
        raise EmptyDataError(f"no feature of {path} has a {class_attribute} in the class map {sorted(class_map)}; "
                             f"values found: {found}")
    return out, out[CLASS_COLUMN].to_numpy(np.int64)


def read_labels(path: str, cfg):
    """A vector label file read once (:class:`geotool.io.vector.VectorLabels`), filtered to the mapped classes,
    with each feature's class id in ``CLASS_COLUMN``."""
    from geotool.io.vector import VectorLabels, require_polygons

    labels = VectorLabels(path)
    frame = require_polygons(labels.frame, path, "give building/forest polygons (or a class-mask raster) as labels")
    labels.frame, _ = label_values(frame, path, cfg.class_attribute, cfg.class_map)
    return labels


def load_scene(image: str, label: str, cfg, n_classes: int, split_seed: int, val_fraction: float,
               vectors=None) -> TrainScene:
    """Open one image and its labels as a :class:`TrainScene` (read window by window) with a block split.

    No pixel is read whole: the split lives on the block grid, validity is checked on a decimated mask,
    and labels are rasterized block by block on demand. Vector labels are reprojected to the image CRS and
    must intersect it (else NoOverlapError); mask rasters must share the image grid and are scanned once,
    block by block, for their class ids. Pixels without data get ``cfg.ignore_index``. ``vectors``: the
    label file already read (:func:`read_labels`), of which the scene takes only its own features; read
    here when None.
    """
    from geotool.io.windows import RasterWindows, VectorWindows

    cache_mb = getattr(cfg, "cache_mb", None) or CACHE_MB
    reader = RasterWindows(image, bands=cfg.bands, nodata=cfg.nodata, cache_mb=cache_mb)
    grid = reader.grid
    bands = list(cfg.bands) if cfg.bands else list(range(1, reader.count + 1))
    if not reader.coarse_valid(CELL).any():
        raise EmptyDataError(f"{image} has no valid pixel; check its nodata value (or --nodata)")
    gdf = None
    if is_vector(label):
        vectors = vectors if vectors is not None else read_labels(label, cfg)
        gdf = vectors.for_grid(grid, str(image), require_overlap=False)
        if gdf.empty:
            raise NoOverlapError(f"no labelled feature of {label} overlaps {image} after reprojection to {grid.crs}")
        values = gdf[CLASS_COLUMN].to_numpy()
        _check_ids(np.unique(values), image, n_classes, cfg.ignore_index)
        dtype = "uint8" if values.max() <= 255 else "int32"
        labels_reader = VectorWindows(gdf.geometry.values, values, grid, dtype)
        cells = np.argwhere(VectorWindows(gdf.geometry.values[values > 0], values[values > 0], grid).coarse(CELL))
    else:
        labels_reader = RasterWindows(label, bands=[1], cache_mb=cache_mb)
        if not labels_reader.grid.same_as(grid):
            raise RasterMismatchError(f"mask {label} is not on the grid of {image} "
                                      f"({'; '.join(labels_reader.grid.differences(grid))}); resample it")
        ids, cells = _scan_mask(labels_reader, cfg.ignore_index)
        if not len(ids):
            raise EmptyDataError(f"{image} has no labelled valid pixel; check nodata and {label}")
        _check_ids(ids, image, n_classes, cfg.ignore_index)
    block = cfg.block or 2 * cfg.window
    val_blocks = split_blocks(grid.height, grid.width, block, val_fraction, split_seed, window=cfg.window)
    return TrainScene([str(image)], bands, reader, labels_reader, val_blocks, block, gdf, str(label), grid,
                      cfg.ignore_index, cells.astype(np.int32), CELL)


def _check_ids(ids: np.ndarray, image, n_classes: int, ignore_index: int) -> None:
    bad = [int(v) for v in ids if v != ignore_index and not 0 <= v < n_classes]
    if bad:
        raise ConfigError(f"labels of {image} hold class ids {bad[:8]} outside 0..{n_classes - 1}; "
                          "extend class_names or fix the class map")


def _scan_mask(labels_reader, ignore_index: int, rows: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """One pass over a mask raster, ``rows`` at a time: its labelled class ids and the ``CELL``-pixel cells
    holding a class > 0 (``(n, 2)`` cell row, col)."""
    from rasterio.windows import Window

    grid, src = labels_reader.grid, labels_reader.source()
    ids: set[int] = set()
    cells = []
    for r in range(0, grid.height, rows):
        h = min(rows, grid.height - r)
        data, valid = src.read(Window(0, r, grid.width, h))
        t = data[0]
        known = valid & (t != ignore_index)
        ids.update(np.unique(t[known]).tolist())
        pos = known & (t > 0)
        ph, pw = -(-h // CELL) * CELL, -(-grid.width // CELL) * CELL
        padded = np.zeros((ph, pw), bool)
        padded[:h, : grid.width] = pos
        hit = np.argwhere(padded.reshape(ph // CELL, CELL, pw // CELL, CELL).any(axis=(1, 3)))
        cells.append(hit + [r // CELL, 0])
    return np.array(sorted(ids)), np.concatenate(cells) if cells else np.zeros((0, 2), np.int64)


def pair_labels(images: list, labels: list[str]) -> list[str]:
    """One vector file for all images, or one label file per image."""
    if len(labels) == 1 and (is_vector(labels[0]) or len(images) == 1):
        return [labels[0]] * len(images)
    if len(labels) != len(images):
        raise ConfigError(f"{len(labels)} label files for {len(images)} images; give one vector file or one mask per image")
    return list(labels)


def _read_vector_labels(labels: list[str], cfg) -> dict:
    """Each distinct vector label file read once: ``path -> VectorLabels``."""
    return {lab: read_labels(lab, cfg) for lab in dict.fromkeys(labels) if is_vector(lab)}


def _split_fits(scenes: list[TrainScene], window: int) -> bool:
    """Some scene holds a whole window in its validation blocks, and some scene one in its training part."""
    return (any(len(s.positions("val", window)) for s in scenes)
            and any(len(s.positions("train", window)) for s in scenes))


def load_scenes(cfg) -> tuple[list[TrainScene], list[TrainScene]]:
    """Training and validation scenes: separate validation scenes if given, else a block split."""
    from geotool.io.files import expand_inputs

    n_classes = len(cfg.class_names)
    images = expand_inputs(cfg.images)
    labels = pair_labels(images, [str(p) for p in expand_inputs(cfg.labels, suffixes=VECTOR_EXT + (".tif", ".tiff"), what="label")])
    separate = bool(cfg.val_images)
    split_seed = cfg.seed if cfg.split_seed is None else cfg.split_seed
    vectors = _read_vector_labels(labels, cfg)
    train = [load_scene(str(im), lab, cfg, n_classes, split_seed + i, 0.0 if separate else cfg.val_fraction, vectors.get(lab))
             for i, (im, lab) in enumerate(zip(images, labels))]
    if separate:
        vimages = expand_inputs(cfg.val_images)
        vlabels = pair_labels(vimages, [str(p) for p in expand_inputs(cfg.val_labels or cfg.labels, suffixes=VECTOR_EXT + (".tif", ".tiff"), what="label")])
        val = []
        vectors.update(_read_vector_labels([lab for lab in vlabels if lab not in vectors], cfg))
        for im, lab in zip(vimages, vlabels):
            s = load_scene(str(im), lab, cfg, n_classes, 0, 0.0, vectors.get(lab))
            s.set_val_blocks(np.ones_like(s.val_blocks))
            val.append(s)
        return train, val
    if not _split_fits(train, cfg.window) and cfg.block is None:
        # small real tiles: the default blocks (2 x window) leave no whole validation window, blocks of one window may
        log.warning("the scenes are too small for %d-px split blocks (2 x --window); splitting them in %d-px blocks "
                    "(--block %d) instead", 2 * cfg.window, cfg.window, cfg.window)
        cfg = cfg.model_copy(update={"block": cfg.window})
        train = [load_scene(str(im), lab, cfg, n_classes, split_seed + i, cfg.val_fraction, vectors.get(lab))
                 for i, (im, lab) in enumerate(zip(images, labels))]
    if not _split_fits(train, cfg.window):
        sizes = ", ".join(f"{s.grid.width}x{s.grid.height}" for s in train[:3])
        raise ConfigError(f"the scenes ({sizes} px) are too small to hold out whole {cfg.window}-px validation blocks; "
                          "give --val-images, or a smaller --window")
    return train, train

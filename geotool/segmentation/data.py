"""Training scenes for segmentation: images + labels (vectors or mask rasters) on each image's grid."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from geotool.errors import ConfigError, EmptyDataError, NoOverlapError, RasterMismatchError
from geotool.labels import CLASS_COLUMN  # class id of each label polygon in TrainScene.labels
from geotool.training.sampler import TrainScene
from geotool.training.split import block_split

log = logging.getLogger(__name__)
VECTOR_EXT = (".gpkg", ".geojson", ".json", ".shp")


def is_vector(path: str | Path) -> bool:
    """True for GeoPackage / GeoJSON / shapefile paths."""
    return Path(path).suffix.lower() in VECTOR_EXT


def label_values(gdf, path, class_attribute: str | None, class_map: dict[str, int]) -> tuple[object, np.ndarray]:
    """Filter features to mapped classes and return ``(gdf, class ids)``."""
    if class_attribute is None:
        return gdf, np.ones(len(gdf), np.int64)
    if class_attribute not in gdf.columns:
        raise ConfigError(f"{path} has no column {class_attribute!r} (columns: {', '.join(map(str, gdf.columns))}); set class_attribute")
    if not class_map:
        raise ConfigError(f"class_attribute {class_attribute!r} needs a class_map (value -> class id) in the config")
    keys = gdf[class_attribute].astype(str)
    keep = keys.isin(list(class_map))
    if not keep.any():
        raise EmptyDataError(f"no feature of {path} has a {class_attribute} in the class map {sorted(class_map)}; "
                             f"values found: {sorted(set(keys))[:10]}")
    gdf = gdf[keep.to_numpy()]
    return gdf, np.array([class_map[k] for k in keys[keep]], np.int64)


def read_labels(path: str, cfg):
    """A vector label file read once (:class:`geotool.io.vector.VectorLabels`), filtered to the mapped classes,
    with each feature's class id in ``CLASS_COLUMN``."""
    from geotool.io.vector import VectorLabels, require_polygons

    labels = VectorLabels(path)
    frame = require_polygons(labels.frame, path, "give building/forest polygons (or a class-mask raster) as labels")
    gdf, values = label_values(frame, path, cfg.class_attribute, cfg.class_map)
    labels.frame = gdf.assign(**{CLASS_COLUMN: values})
    return labels


def load_scene(image: str, label: str, cfg, n_classes: int, split_seed: int, val_fraction: float,
               vectors=None) -> TrainScene:
    """Read one image and its labels into a :class:`TrainScene` with a block split.

    Vector labels are reprojected to the image CRS and must intersect it (else NoOverlapError); mask
    rasters must share the image grid. Pixels without data get ``cfg.ignore_index``. ``vectors``: the
    label file already read (:func:`read_labels`), of which the scene takes only its own features; read
    here when None.
    """
    from geotool.io.raster import RasterSource
    from geotool.io.vector import rasterize

    with RasterSource(image, bands=cfg.bands, nodata=cfg.nodata) as src:
        grid = src.grid
        data, valid = src.read(dtype=np.float32)
        bands = list(cfg.bands) if cfg.bands else list(range(1, src.count + 1))
    data[:, ~valid] = 0.0
    gdf = None
    if is_vector(label):
        vectors = vectors if vectors is not None else read_labels(label, cfg)
        gdf = vectors.for_grid(grid, str(image), require_overlap=False)
        if gdf.empty:
            raise NoOverlapError(f"no labelled feature of {label} overlaps {image} after reprojection to {grid.crs}")
        values = gdf[CLASS_COLUMN].to_numpy()
        target = rasterize(gdf, grid, values=values, fill=0, dtype="int64" if values.max() > 255 else "uint8").astype(np.int64)
    else:
        with RasterSource(label) as lab:
            if not lab.grid.same_as(grid):
                raise RasterMismatchError(f"mask {label} is not on the grid of {image} ({'; '.join(lab.grid.differences(grid))}); resample it")
            lab_data, lab_valid = lab.read()
        target = lab_data[0].astype(np.int64)
        target[~lab_valid] = cfg.ignore_index
    bad = (target != cfg.ignore_index) & ((target < 0) | (target >= n_classes))
    if bad.any():
        raise ConfigError(f"labels of {image} hold class ids {sorted(set(np.unique(target[bad]).tolist()))[:8]} "
                          f"outside 0..{n_classes - 1}; extend class_names or fix the class map")
    target[~valid] = cfg.ignore_index
    if not (valid & (target != cfg.ignore_index)).any():
        raise EmptyDataError(f"{image} has no labelled valid pixel; check nodata and {label}")
    if 0 <= cfg.ignore_index <= 255 and n_classes <= 256:
        # labels held for the whole run: one byte a pixel instead of eight (windows are still cut as int64)
        target = target.astype(np.uint8)
    block = cfg.block or 2 * cfg.window
    val_region = block_split(grid.height, grid.width, block, val_fraction, split_seed, window=cfg.window)
    return TrainScene([str(image)], bands, data, target, valid, val_region, gdf, str(label), grid)


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
    from geotool.training.split import window_positions

    return (any(len(window_positions(s.val_region, window)) for s in scenes)
            and any(len(window_positions(~s.val_region, window)) for s in scenes))


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
            s.val_region = np.ones_like(s.valid)
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

"""On-the-fly OBA for training: the ``sample_transform`` hook the segmentation dataset calls on training
windows only, with an object bank built from the training split only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from geotool.labels import CLASS_COLUMN
from geotool.oba.bank import ObjectBank, extract_objects, require_objects
from geotool.oba.compose import compose_scene
from geotool.oba.config import OBAConfig

if TYPE_CHECKING:
    from geotool.training.sampler import TrainScene


class OnlineOBA:
    """Paste bank objects onto a training window with probability ``cfg.probability``: a
    :class:`geotool.training.sampler.SampleTransform`.

    Picklable (numpy chips + a pydantic config), so DataLoader workers get their own copy. The window
    itself is the background: pasted objects avoid its labelled pixels (plus ``cfg.min_gap``), its
    ignore pixels and its invalid pixels, which are never changed.

    Args:
        bank: objects from the training split.
        cfg: the same config as ``oba-augment`` (``scene_size`` is ignored: the window's size is used).
        res: pixel size of the training windows (CRS units), or one per training scene (then the dataset
            passes the window's scene index); chips are resampled from their own pixel size.
    """

    wants_scene = True  # a SampleTransform given ``scene=`` (the window's scene index) by the dataset

    def __init__(self, bank: ObjectBank, cfg: OBAConfig, res: float | Sequence[float]) -> None:
        require_objects(bank, "the training split")
        self.bank = bank
        self.cfg = cfg
        self.res = [float(r) for r in res] if isinstance(res, (list, tuple)) else float(res)
        self._class_index = bank.by_class()

    def __call__(self, image, mask, valid, rng, scene: int = 0):
        return self.sample_transform(image, mask, valid, rng, scene)

    def sample_transform(
        self, image: np.ndarray, mask: np.ndarray, valid: np.ndarray, rng: np.random.Generator, scene: int = 0
    ) -> tuple[np.ndarray, np.ndarray]:
        """Augment one training sample.

        Args:
            image: ``(C, H, W)`` float32, raw units.
            mask: ``(H, W)`` int64 class ids, ``cfg.ignore_index`` on nodata.
            valid: ``(H, W)`` bool.
            rng: the sample's generator (the dataset seeds it per sample/epoch).
            scene: index of the window's scene (selects its pixel size when ``res`` is per scene).

        Returns:
            ``(image float32 (C, H, W), mask int64 (H, W))``, unchanged with probability ``1 - p``.
        """
        if rng.random() >= self.cfg.probability:
            return image, mask
        if image.shape[0] != self.bank.band_count:
            from geotool.errors import BandError

            raise BandError(
                f"training windows have {image.shape[0]} band(s) but the OBA object bank has {self.bank.band_count}; "
                "build the bank from the same bands"
            )
        res = self.res[scene] if isinstance(self.res, list) else self.res
        comp = compose_scene(image, valid, mask, self.bank, rng, self.cfg, res, self._class_index)
        out_mask = comp.mask
        out_mask[~valid] = mask[~valid]
        return comp.image, out_mask


@dataclass
class ObjectSource:
    """A scene the object bank cuts objects from: a training scene as OBA sees it (its image, its own labels
    and its training region).

    Attributes:
        image: GeoTIFF path (or paths of a stack).
        labels: GeoDataFrame of instance polygons already in the raster's CRS.
        class_column: column with class ids 1..254 (None: every object is class 1).
        region: the training split on this scene: a boolean ``(rows, cols)`` array on the scene grid (or a
            :class:`geotool.training.sampler.BlockRegion`, expanded slice by slice), or a GeoDataFrame / shapely geometry of train
            polygons in the raster CRS; None = the whole scene.
        source: an open reader of the scene (:class:`geotool.io.windows.RasterWindows`, with the bands
            training reads) to cut objects from; None = open ``image``.
    """

    image: str | os.PathLike | Sequence[str | os.PathLike]
    labels: Any
    class_column: str | None = None
    region: Any = None
    source: Any = None


def build_online_oba(scenes: Sequence[ObjectSource], cfg: OBAConfig, bands: Sequence[int | str] | None = None,
                     res: float | Sequence[float] | None = None) -> OnlineOBA:
    """Bank every object lying entirely inside each scene's training region and return the hook.

    ``res``: pixel size of the training windows, or one per dataset scene (see :class:`OnlineOBA`);
    default the first scene's. Objects from scenes of another pixel size are resampled.
    """
    from contextlib import ExitStack
    from pathlib import Path

    from geotool.io.raster import RasterSource
    from geotool.training.sampler import BlockRegion

    bank = ObjectBank()
    first_res = None
    for scene in scenes:
        with ExitStack() as stack:
            src = scene.source or stack.enter_context(RasterSource(scene.image, bands=bands if bands is not None else cfg.bands))
            if first_res is None:
                first_res = float(np.mean(src.grid.res))
            gdf = scene.labels
            classes = gdf[scene.class_column].to_numpy() if scene.class_column else np.ones(len(gdf), int)
            region_mask, region_geom = None, None
            if isinstance(scene.region, (np.ndarray, BlockRegion)):
                if tuple(scene.region.shape) != tuple(src.grid.shape):
                    from geotool.errors import RasterMismatchError

                    raise RasterMismatchError(
                        f"the training region mask is {scene.region.shape} but {src.paths[0]} is {src.grid.shape}"
                    )
                region_mask = scene.region.astype(bool) if isinstance(scene.region, np.ndarray) else scene.region
            elif scene.region is not None:
                region_geom = scene.region.union_all() if hasattr(scene.region, "union_all") else scene.region
            heights = None
            if cfg.shadows.height_attribute and cfg.shadows.height_attribute in gdf.columns:
                heights = gdf[cfg.shadows.height_attribute].astype(float).to_numpy()
            extract_objects(
                src, gdf, classes, Path(src.paths[0]).name, heights=heights, region=region_mask,
                region_geometry=region_geom, min_pixels=cfg.min_object_pixels, bank=bank,
            )
            if bank.band_count is not None and bank.band_count != src.count:
                from geotool.errors import BandError

                raise BandError(f"{src.paths[0]} has {src.count} band(s), other training scenes {bank.band_count}")
    return OnlineOBA(bank, cfg, res if res is not None else (first_res or 1.0))


def build_online_oba_from_files(
    images: Sequence[str | os.PathLike],
    labels: str | os.PathLike,
    cfg: OBAConfig,
    regions: Sequence[Any] | None = None,
) -> OnlineOBA:
    """The hook from files, as ``train-segmentation --oba`` needs it.

    Args:
        images: training scenes (GeoTIFF), each with its own grid.
        labels: polygons in any CRS with ``cfg.class_attribute`` (reprojected per scene), or a class mask
            GeoTIFF; class ids are resolved as in ``oba-augment`` (see :func:`geotool.labels.assign_classes`).
        regions: per scene, the training split (boolean array on the scene grid, train polygons in the
            scene CRS, or None for the whole scene). Objects crossing the split boundary are left out, so
            nothing from validation blocks reaches the bank.
    """
    from pathlib import Path

    from geotool.io.raster import read_grid
    from geotool.oba.pipeline import read_labels, resolve_classes, validate_label_columns

    labels = Path(labels)
    mapping = validate_label_columns(labels, cfg)
    regions = list(regions) if regions is not None else [None] * len(images)
    if len(regions) != len(images):
        from geotool.errors import ConfigError

        raise ConfigError(f"{len(regions)} training regions for {len(images)} scenes; give one per scene")
    scenes = []
    for image, region in zip(images, regions):
        gdf = read_labels(labels, read_grid(image), cfg, mapping, str(image))
        if cfg.paste_classes is not None:
            gdf = gdf[gdf[CLASS_COLUMN].isin(resolve_classes(cfg.paste_classes, mapping, labels))].reset_index(drop=True)
        if cfg.shadows.height_attribute and cfg.shadows.enabled:
            gdf[cfg.shadows.height_attribute] = gdf["_height"]
        scenes.append(ObjectSource(image, gdf, CLASS_COLUMN, region))
    return build_online_oba(scenes, cfg)


def build_online_oba_for_scenes(scenes: Sequence["TrainScene"], cfg: OBAConfig, class_names: Sequence[str] = ()) -> OnlineOBA:
    """The hook for ``train-segmentation --oba``: bank the objects of the training blocks of
    :class:`geotool.training.sampler.TrainScene` scenes, read through the scenes' own readers (the same
    block cache as the training windows; no raster is reopened).

    Vector labels bring their class ids (``CLASS_COLUMN``); mask-raster labels are vectorized strip by strip
    (:meth:`TrainScene.label_polygons`). Only objects lying entirely inside the training blocks are banked,
    so nothing from the validation blocks can be pasted into a training window. ``paste_classes`` may be
    ids or names of ``class_names`` (the segmentation classes, index = id).
    """
    from geotool.oba.pipeline import resolve_classes

    paste = None
    if cfg.paste_classes is not None:
        mapping = {name: i for i, name in enumerate(class_names) if i > 0}
        paste = sorted(resolve_classes(cfg.paste_classes, mapping, "the segmentation classes"))
    entries = []
    for s in scenes:
        if not s.blocks("train").any():
            continue
        gdf = s.label_polygons()
        if paste is not None:
            gdf = gdf[gdf[CLASS_COLUMN].isin(paste)].reset_index(drop=True)
        entries.append(ObjectSource(s.paths if len(s.paths) > 1 else s.paths[0], gdf, CLASS_COLUMN,
                                     s.region_view("train"), source=s.reader))
    if not entries:
        from geotool.errors import EmptyDataError

        raise EmptyDataError("no training block is left for the OBA object bank; lower --val-fraction")
    # windows of each scene get objects at that scene's pixel size
    return build_online_oba(entries, cfg, bands=scenes[0].bands, res=[float(np.mean(s.grid.res)) for s in scenes])

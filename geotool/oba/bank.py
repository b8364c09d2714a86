"""The object bank: every labelled instance as a compact chip (pixels + alpha + class + source + pixel size).

Chips are cropped to the object's bounding box and kept in the scene's own dtype, so the bank holds only
object pixels (a few MB for thousands of buildings), never whole scenes. Pixel size is kept per chip; the
compositor resamples each chip to the background's pixel size when it pastes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from geotool.errors import EmptyDataError


@dataclass
class ObjectChip:
    """One labelled object.

    Attributes:
        image: ``(bands, h, w)`` pixels of the bounding box, the scene's dtype.
        alpha: ``(h, w)`` bool, True on the object (inside its polygon and valid).
        class_id: class 1..254.
        source: name of the scene it came from.
        object_id: index of the feature in that scene's labels.
        res: pixel size in CRS units (metres for projected CRSs), mean of x and y.
        height: object height in metres when the labels carry one, else None.
    """

    image: np.ndarray
    alpha: np.ndarray
    class_id: int
    source: str
    object_id: int
    res: float
    height: float | None = None

    @property
    def n_pixels(self) -> int:
        """Object area in pixels at its own pixel size."""
        return int(self.alpha.sum())


@dataclass
class ObjectBank:
    """All banked objects, with an index by class for class-balanced draws."""

    objects: list[ObjectChip] = field(default_factory=list)
    band_count: int | None = None

    def add(self, chip: ObjectChip) -> None:
        """Append one object (its band count must match the bank's)."""
        if self.band_count is None:
            self.band_count = chip.image.shape[0]
        self.objects.append(chip)

    def __len__(self) -> int:
        return len(self.objects)

    @property
    def classes(self) -> list[int]:
        """Sorted class ids present."""
        return sorted({o.class_id for o in self.objects})

    def by_class(self) -> dict[int, np.ndarray]:
        """Class id -> indices of its objects."""
        ids = np.array([o.class_id for o in self.objects])
        return {c: np.flatnonzero(ids == c) for c in self.classes}

    @property
    def nbytes(self) -> int:
        """Memory held by chips, in bytes."""
        return sum(o.image.nbytes + o.alpha.nbytes for o in self.objects)


def extract_objects(
    src,
    gdf,
    class_ids: Sequence[int],
    source_name: str,
    heights: Sequence[float | None] | None = None,
    region: np.ndarray | None = None,
    region_geometry=None,
    min_pixels: int = 1,
    bank: ObjectBank | None = None,
) -> ObjectBank:
    """Cut every polygon of ``gdf`` out of ``src`` into ``bank``.

    Args:
        src: an open :class:`geotool.io.raster.RasterSource` (the scene).
        gdf: polygons already in ``src``'s CRS (``read_vector(..., target=src.grid)``).
        class_ids: class of each polygon (1..254).
        source_name: name recorded in the manifest.
        heights: per-polygon height in metres (or None).
        region: optional boolean ``(rows, cols)`` on ``src.grid``: only objects entirely inside are kept
            (the training split).
        region_geometry: optional shapely geometry in ``src``'s CRS with the same role.
        min_pixels: smaller objects (after clipping to valid pixels) are skipped.
    """
    from rasterio.windows import Window

    from geotool.io.vector import rasterize_geometries

    bank = bank if bank is not None else ObjectBank()
    grid = src.grid
    res = float(np.mean(grid.res))
    inv = ~grid.transform
    for i, geom in enumerate(gdf.geometry.values):
        if geom is None or geom.is_empty or geom.geom_type not in ("Polygon", "MultiPolygon"):
            continue
        if region_geometry is not None and not geom.within(region_geometry):
            continue
        x0, y0, x1, y1 = geom.bounds
        cols, rows = zip(*(inv * (x, y) for x, y in ((x0, y0), (x1, y1), (x0, y1), (x1, y0))))
        c0, c1 = int(np.floor(min(cols))) - 1, int(np.ceil(max(cols))) + 1
        r0, r1 = int(np.floor(min(rows))) - 1, int(np.ceil(max(rows))) + 1
        c0, r0 = max(c0, 0), max(r0, 0)
        c1, r1 = min(c1, grid.width), min(r1, grid.height)
        if c1 <= c0 or r1 <= r0:
            continue
        window = Window(c0, r0, c1 - c0, r1 - r0)
        burn = rasterize_geometries([geom], grid, window=window).astype(bool)
        if region is not None:
            inside = region[r0:r1, c0:c1]
            if (burn & ~inside).any():
                continue
        data, valid = src.read(window)
        alpha = burn & valid
        if alpha.sum() < min_pixels:
            continue
        rr, cc = np.nonzero(alpha)
        sl = (slice(rr.min(), rr.max() + 1), slice(cc.min(), cc.max() + 1))
        height = None if heights is None else heights[i]
        bank.add(
            ObjectChip(
                image=np.ascontiguousarray(data[:, sl[0], sl[1]]),
                alpha=np.ascontiguousarray(alpha[sl]),
                class_id=int(class_ids[i]),
                source=source_name,
                object_id=int(i),
                res=res,
                height=None if height is None or not np.isfinite(height) else float(height),
            )
        )
    return bank


def require_objects(bank: ObjectBank, what: str) -> None:
    """Raise EmptyDataError when the bank is empty."""
    if len(bank) == 0:
        raise EmptyDataError(
            f"no labelled object could be cut out of {what} (none inside the scenes' valid pixels, the "
            "training region, or larger than min_object_pixels); check the labels and images"
        )

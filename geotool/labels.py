"""Label conventions shared by segmentation, OBA and evaluation.

Class ids are integers: 0 background, 1..254 classes, :data:`CLASS_NODATA` (255) nodata / ignored in every
uint8 class raster and mask geotool writes or reads. Label polygons carry their class id in
:data:`CLASS_COLUMN` once read, set by the one label-to-class rule :func:`assign_classes`.
"""

from __future__ import annotations

from typing import Any

#: Column holding each label polygon's class id after reading (a name no user attribute will have).
CLASS_COLUMN = "_class"
#: Class raster / mask value for nodata and ignored pixels (uint8).
CLASS_NODATA = 255


def class_mapping(values, attribute: str | None, path) -> dict[Any, int]:
    """Class ids 1..254 for the values of a label attribute when no mapping is configured: integer values are
    kept, names are numbered 1.. in sorted order."""
    import numpy as np

    from geotool.errors import ConfigError, EmptyDataError

    if attribute is None:
        return {}
    uniq = sorted({v for v in values if v is not None and v == v}, key=str)
    if not uniq:
        raise EmptyDataError(f"{path}: attribute {attribute!r} is empty on every feature; choose another --class-attribute")
    if all(isinstance(v, (int, np.integer, float, np.floating)) and float(v).is_integer() for v in uniq):
        bad = [v for v in uniq if not 1 <= int(v) <= CLASS_NODATA - 1]
        if bad:
            raise ConfigError(f"{path}: class values {bad[:5]} in {attribute!r} are outside 1..254 "
                              f"(0 is background, {CLASS_NODATA} ignore); recode them")
        return {v: int(v) for v in uniq}
    if len(uniq) > CLASS_NODATA - 1:
        raise ConfigError(f"{path}: {attribute!r} has {len(uniq)} distinct values; at most 254 classes")
    return {v: i + 1 for i, v in enumerate(uniq)}


def assign_classes(gdf, path, attribute: str | None, mapping: dict):
    """The label-to-class rule of every command: each feature's class id in :data:`CLASS_COLUMN`.

    Without ``attribute`` every feature is class 1. With it, a feature whose attribute value, compared as
    text, is a key of ``mapping`` (a configured class map, or :func:`class_mapping` of the file) gets that
    id; other features are dropped. Returns a new GeoDataFrame (original order, index kept).
    """
    from geotool.errors import ConfigError

    if attribute is None:
        return gdf.assign(**{CLASS_COLUMN: 1})
    if attribute not in gdf.columns:
        raise ConfigError(f"{path} has no column {attribute!r} (columns: {', '.join(map(str, gdf.columns))}); "
                          "set class_attribute")
    lookup = {str(k): int(v) for k, v in mapping.items()}
    keys = gdf[attribute].astype(str)
    keep = keys.isin(list(lookup)).to_numpy()
    return gdf[keep].assign(**{CLASS_COLUMN: [lookup[k] for k in keys[keep]]})

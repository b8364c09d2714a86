"""Vectors: read and reproject to a raster's CRS, write by extension, rasterize per window, vectorize masks.

Supported files: GeoPackage (``.gpkg``), GeoJSON (``.geojson``/``.json``), shapefile (``.shp``) and, for
points, CSV (``.csv``, with x/y columns). Every vector output carries its CRS (CSV outputs: a ``crs``
column).
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from geotool.errors import CRSError, EmptyDataError, InputFileError, NoOverlapError, OutputError
from geotool.io.atomic import atomic_file_group, atomic_path
from geotool.io.components import STRIP_ROWS
from geotool.io.files import require_file
from geotool.io.raster import Grid, crs_name

log = logging.getLogger(__name__)

VECTOR_DRIVERS = {".gpkg": "GPKG", ".geojson": "GeoJSON", ".json": "GeoJSON", ".shp": "ESRI Shapefile"}
VECTOR_SUFFIXES = tuple(VECTOR_DRIVERS) + (".csv",)


def read_vector(
    path: str | os.PathLike,
    target: Grid | None = None,
    layer: str | None = None,
    require_overlap: bool = True,
    raster_name: str | None = None,
    x_column: str = "x",
    y_column: str = "y",
    csv_crs: Any = None,
):
    """Read a vector file as a GeoDataFrame, reprojected to ``target``'s CRS.

    Args:
        path: GeoPackage, GeoJSON, shapefile, or CSV with ``x_column``/``y_column`` (points).
        target: the raster grid the features will be used with; features are reprojected to its CRS
            and, with ``require_overlap``, at least one must intersect its bounds.
        layer: layer name for multi-layer files (GeoPackage).
        raster_name: how to name the raster in messages (defaults to "the raster").
        csv_crs: CRS of CSV coordinates (required for CSV input).

    Raises:
        InputFileError: missing or unreadable file. CRSError: no CRS. NoOverlapError: no feature
        intersects the raster after reprojection.
    """
    import geopandas as gpd

    path = require_file(path, "vector file")
    if path.suffix.lower() == ".csv":
        gdf = _read_points_csv(path, x_column, y_column, csv_crs)
    else:
        try:
            gdf = gpd.read_file(path, layer=layer, engine="pyogrio")
        except Exception as exc:  # pyogrio raises DataSourceError/DataLayerError and others
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise InputFileError(
                f"{path} is not a readable vector file ({reason}); give a GeoPackage, GeoJSON or shapefile"
            ) from None
    if gdf.crs is None:
        raise CRSError(f"{path} has no CRS; set one (e.g. ogr2ogr -a_srs EPSG:4326 fixed.gpkg {path.name})")
    gdf = repair_polygons(gdf[~(gdf.geometry.isna() | gdf.geometry.is_empty)].copy(), path)
    if target is not None:
        if target.crs is None:
            raise CRSError(f"{raster_name or 'the raster'} has no CRS, so {path} cannot be placed on it")
        source_crs = gdf.crs
        if source_crs != target.crs:
            gdf = gdf.to_crs(target.crs)
        if require_overlap:
            from shapely.geometry import box

            frame = box(*target.bounds)
            if gdf.empty or not gdf.intersects(frame).any():
                raise NoOverlapError(
                    f"{path} ({crs_name(source_crs)}) does not overlap {raster_name or 'the raster'} "
                    f"({crs_name(target.crs)}) after reprojection; check that both cover the same area"
                )
    return gdf


def repair_polygons(gdf, path: str | os.PathLike):
    """Invalid polygons (self-intersecting rings, bow ties) made valid with shapely's ``make_valid``
    (structure method: the areas the rings enclose, collapsed parts dropped), with a warning saying how
    many in which file: a GIS would draw them, but their area, intersections and rasters are undefined."""
    import shapely

    geoms = gdf.geometry.values
    polygonal = np.isin(gdf.geometry.geom_type.to_numpy(), ["Polygon", "MultiPolygon"])
    invalid = polygonal & ~shapely.is_valid(geoms)
    if invalid.any():
        fixed = shapely.make_valid(geoms[invalid], method="structure", keep_collapsed=False)
        gdf.loc[invalid, gdf.geometry.name] = fixed
        log.warning("%s: %d invalid polygon(s) (e.g. self-intersecting) repaired with make_valid; fix them at the "
                    "source to silence this", path, int(invalid.sum()))
        gdf = gdf[~gdf.geometry.is_empty].copy()
    return gdf


class VectorLabels:
    """A vector file read once and handed out raster by raster: each raster gets only its own features, in its CRS.

    Training over hundreds of scenes with one label file used to read, reproject and keep the whole file per
    scene (time and memory O(scenes x features)). Here the file is read once in its own CRS with a spatial
    index; :meth:`for_grid` takes the features whose bounding boxes meet the raster's bounds (transformed to the
    file's CRS, densified so that curved edges are covered), reprojects only those and keeps the ones that
    intersect the raster. The features and their order are those :func:`read_vector` with ``target`` gives
    on that raster, so rasterized labels are the same.

    Args:
        path: GeoPackage, GeoJSON or shapefile.
        layer: layer name for multi-layer files.
    """

    def __init__(self, path: str | os.PathLike, layer: str | None = None) -> None:
        self.path = Path(path)
        self.frame = read_vector(path, layer=layer)

    def for_grid(self, grid: Grid, raster_name: str | None = None, require_overlap: bool = True):
        """The features of :attr:`frame` that intersect ``grid``'s bounds, reprojected to its CRS (original order).

        Raises:
            CRSError: the raster has no CRS. NoOverlapError: with ``require_overlap``, no feature intersects it.
        """
        from rasterio.warp import transform_bounds
        from shapely.geometry import box

        if grid.crs is None:
            raise CRSError(f"{raster_name or 'the raster'} has no CRS, so {self.path} cannot be placed on it")
        frame = self.frame
        bounds = grid.bounds
        if frame.crs != grid.crs:
            bounds = transform_bounds(grid.crs, frame.crs, *bounds, densify_pts=21)
        idx = np.sort(frame.sindex.query(box(*bounds), predicate="intersects")) if len(frame) else np.zeros(0, np.int64)
        sub = frame.iloc[idx]
        if frame.crs != grid.crs:
            sub = sub.to_crs(grid.crs)
        sub = sub[sub.intersects(box(*grid.bounds)).to_numpy()]
        if require_overlap and sub.empty:
            raise NoOverlapError(
                f"{self.path} ({crs_name(frame.crs)}) does not overlap {raster_name or 'the raster'} "
                f"({crs_name(grid.crs)}) after reprojection; check that both cover the same area"
            )
        return sub


def _read_points_csv(path: Path, x_column: str, y_column: str, crs: Any):
    import geopandas as gpd

    from geotool.io.files import read_table

    frame = read_table(path)
    missing = [c for c in (x_column, y_column) if c not in frame.columns]
    if missing:
        raise InputFileError(
            f"{path} has no column {', '.join(missing)}; name the coordinate columns "
            f"(available: {', '.join(map(str, frame.columns))})"
        )
    if crs is None:
        raise CRSError(f"{path} is a CSV table without a CRS; say which CRS its {x_column}/{y_column} are in")
    return gpd.GeoDataFrame(frame, geometry=gpd.points_from_xy(frame[x_column], frame[y_column]), crs=parse_crs(crs, "--crs"))


def parse_crs(text: Any, option: str = "--crs"):
    """A CRS from user text (``EPSG:32637``, WKT, PROJ): a clear CRSError, naming ``option``, when it is unknown."""
    from pyproj import CRS
    from pyproj.exceptions import CRSError as ProjCRSError

    try:
        return CRS.from_user_input(text)
    except ProjCRSError:
        raise CRSError(f"{option} {text}: not a CRS that PROJ knows; give an EPSG code such as EPSG:32637, or WKT") from None


def write_vector(gdf, path: str | os.PathLike, layer: str | None = None) -> Path:
    """Write a GeoDataFrame atomically; the format follows the extension (.gpkg, .geojson, .shp, .csv).

    CSV gets the attribute columns, a ``wkt`` column for non-point geometries (points keep their own
    x/y columns, or get them) and a ``crs`` column.
    """
    with vector_writer(path, layer) as out:
        out.write(gdf)
    return Path(path)


@contextmanager
def vector_writer(path: str | os.PathLike, layer: str | None = None) -> Iterator["VectorWriter"]:
    """A :class:`VectorWriter` appending GeoDataFrame chunks to ``path`` (.gpkg, .geojson, .shp, .csv).

    The chunks go to a temp file beside ``path``, which replaces ``path`` only when the block ends
    without error; on error nothing is left. Memory is one chunk, not the whole output.

    Example:
        with vector_writer("out/polygons.gpkg") as out:
            for chunk in iter_polygons_source(src):
                out.write(chunk)
    """
    writer = VectorWriter(path, layer)
    atomic = atomic_file_group if writer.driver == "ESRI Shapefile" else atomic_path
    with atomic(path) as tmp:
        writer.tmp = tmp
        yield writer
        writer.finish()


class VectorWriter:
    """Appends chunks to one vector output in the temp file ``tmp``; use it through :func:`vector_writer`.

    Every chunk must have the same columns and CRS; the file's layer schema (and, for CSV, whether points
    get x/y or a ``wkt`` column) is that of the first non-empty chunk, as :func:`write_vector` would
    write it for all of them. When every chunk is empty, the last one is written (columns and CRS, no
    rows). :attr:`rows` counts the rows written.
    """

    def __init__(self, path: str | os.PathLike, layer: str | None = None) -> None:
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix != ".csv" and suffix not in VECTOR_DRIVERS:
            raise OutputError(
                f"{self.path}: unsupported vector extension {suffix or '(none)'}; use .gpkg, .geojson, .shp or .csv"
            )
        self.driver = VECTOR_DRIVERS.get(suffix, "CSV")
        self.layer = layer or self.path.stem
        self.tmp: Path | None = None
        self.rows = 0
        self._crs = None
        self._columns: list[str] | None = None
        self._empty = None  # the last empty chunk, written by finish() when no row came

    def write(self, gdf) -> None:
        """Append the rows of ``gdf`` (a GeoDataFrame with a CRS, the same as earlier chunks)."""
        if gdf.crs is None:
            raise ValueError("refusing to write a vector without a CRS")
        if self._crs is not None and gdf.crs != self._crs:
            raise ValueError(f"{self.path}: a chunk in {crs_name(gdf.crs)} after chunks in {crs_name(self._crs)}")
        self._crs = gdf.crs
        if len(gdf) == 0:
            self._empty = gdf
            return
        self._append(gdf)

    def finish(self) -> None:
        """Complete the temp file: without any row, write the columns and CRS of the last empty chunk."""
        if self.rows == 0:
            if self._empty is None:
                raise ValueError(f"{self.path}: nothing was written, not even an empty GeoDataFrame")
            self._append(self._empty)

    def _append(self, gdf) -> None:
        first = self.rows == 0  # an empty chunk is written only by finish(), alone
        if self.driver == "CSV":
            frame = _to_csv_frame(gdf)
            if not first and list(frame.columns) != self._columns:
                raise ValueError(f"{self.path}: columns {list(frame.columns)} after {self._columns}")
            self._columns = list(frame.columns)
            frame.to_csv(self.tmp, index=False, mode="w" if first else "a", header=first)
        else:
            layer = {} if self.driver == "ESRI Shapefile" else {"layer": self.layer}
            gdf.to_file(self.tmp, driver=self.driver, engine="pyogrio", mode="w" if first else "a", **layer)
        self.rows += len(gdf)


def _to_csv_frame(gdf):
    import pandas as pd

    frame = pd.DataFrame(gdf.drop(columns=gdf.geometry.name))
    geom = gdf.geometry
    if len(gdf) and (geom.geom_type == "Point").all():
        if "x" not in frame.columns:
            frame["x"] = geom.x.to_numpy()
        if "y" not in frame.columns:
            frame["y"] = geom.y.to_numpy()
    else:
        frame["wkt"] = geom.to_wkt().to_numpy()
    frame["crs"] = crs_name(gdf.crs)
    return frame


def rasterize(
    gdf,
    grid: Grid,
    window=None,
    values: Sequence[float] | np.ndarray | None = None,
    fill: float = 0,
    dtype: str = "uint8",
    all_touched: bool = False,
) -> np.ndarray:
    """Burn geometries (already in ``grid``'s CRS) into a ``(rows, cols)`` array for ``window``.

    ``values`` gives each geometry's burn value (default 1). Later geometries overwrite earlier ones.
    Only geometries intersecting the window are burnt (spatial index), so this is cheap per window.
    """
    from rasterio.windows import Window
    from shapely.geometry import box

    if window is None:
        window = Window(0, 0, grid.width, grid.height)
    if len(gdf) == 0:
        return rasterize_geometries([], grid, window, fill=fill, dtype=dtype)
    vals = np.ones(len(gdf)) if values is None else np.asarray(values)
    idx = np.sort(gdf.sindex.query(box(*grid.window_grid(window).bounds), predicate="intersects"))
    return rasterize_geometries(gdf.geometry.values[idx], grid, window, vals[idx], fill, dtype, all_touched)


def vectorize(
    classes: np.ndarray,
    grid: Grid,
    valid: np.ndarray | None = None,
    background: int | None = 0,
    min_area: float = 0.0,
    simplify: float = 0.0,
    class_names: dict[int, str] | None = None,
):
    """Polygons of connected regions (4-connected) of equal class in ``classes`` ``(rows, cols)``.

    Args:
        grid: georeference of ``classes``; polygons are in its CRS.
        valid: pixels to consider (nodata excluded); background class ``background`` is skipped.
        min_area: drop polygons smaller than this, in squared CRS units (m^2 for metric CRSs).
        simplify: Douglas-Peucker tolerance in CRS units (0 = none); topology preserved per polygon.

    Returns:
        GeoDataFrame with ``class_id``, ``class_name`` (if names given), ``area`` (m^2 when the CRS is
        geographic, else squared CRS units) and geometry.
    """
    from rasterio import features
    from shapely.geometry import shape

    mask = _foreground(classes, valid, background)
    data = classes.astype(np.int32, copy=False)
    shapes = features.shapes(data, mask=mask, transform=grid.transform, connectivity=4)
    return _polygon_frame(((int(v), shape(g)) for g, v in shapes), grid, min_area, simplify, class_names)


def vectorize_source(src, **options):
    """All chunks of :func:`iter_polygons_source` (same keyword ``options``) in one GeoDataFrame (CRS: the
    raster's).

    Holds every polygon of the scene; stream the chunks instead (e.g. into :func:`vector_writer`) when
    the scene may hold many.
    """
    import pandas as pd

    chunks = list(iter_polygons_source(src, **options))
    full = [c for c in chunks if len(c)] or chunks[-1:]
    return full[0] if len(full) == 1 else pd.concat(full, ignore_index=True)


def iter_polygons_source(
    src,
    background: int | None = 0,
    nodata: int | None = None,
    min_area: float = 0.0,
    simplify: float = 0.0,
    class_names: dict[int, str] | None = None,
    strip_rows: int = STRIP_ROWS,
    description: str | None = None,
) -> Iterator:
    """:func:`vectorize` of the first selected band of an open ``RasterSource``, read strip by strip and
    yielded in GeoDataFrame chunks (CRS: the raster's) as soon as regions are complete.

    Each strip's 4-connected regions are polygonized in pixel coordinates (exact integers). After each
    strip, every region that does not touch the strip's last row can no longer grow: the pieces it was
    cut into at strip boundaries are merged (union of the pieces of one component, see
    :mod:`geotool.io.components`), placed with the grid's transform, simplified and filtered, and
    yielded. Memory is therefore ``strip_rows`` x the raster width plus the regions still open (and a few
    integers per piece), not the scene's polygons. All chunks together equal :func:`vectorize` on the
    whole raster, vertex for vertex (up to floating rounding of the transform), in another row order.
    Chunks during the scan are non-empty; the last one (the regions open at the bottom) may be empty,
    and always comes, so the columns are known even for a scene without polygons.

    Args:
        src: an open :class:`geotool.io.raster.RasterSource`; its nodata pixels are skipped.
        nodata: a further class value to skip (e.g. 255 in predicted class rasters).
        strip_rows: rows read at a time.
        description: label of the progress bar (shown on a terminal only).
        background, min_area, simplify, class_names: as in :func:`vectorize` (squared CRS units, CRS
            units). Areas of a geographic CRS are in m^2 in the UTM zone of the raster's centre.
    """
    from affine import Affine
    from rasterio import features
    from shapely.geometry import shape

    from geotool.io.components import StripComponents, strip_windows
    from geotool.progress import progress_bar

    comps = StripComponents()
    pieces: dict[int, Any] = {}  # provisional id -> polygon (pixel coordinates) of a piece of an open region
    t = src.grid.transform
    matrix = (t.a, t.b, t.d, t.e, t.c, t.f)
    area_crs = _area_crs(src.grid)

    def complete(open_roots: np.ndarray):
        """The regions whose root is not in ``open_roots``, merged, placed and filtered; their pieces dropped."""
        ids = np.fromiter(pieces, np.int64, len(pieces))
        roots = comps.roots(ids)
        merged: dict[int, list] = {}
        for pid, root, done in zip(ids.tolist(), roots.tolist(), (~np.isin(roots, open_roots)).tolist()):
            if done:
                merged.setdefault(root, []).append(pieces.pop(pid))
        records = ((int(comps.classes_of(r)), _placed(merged.pop(r), matrix, strip_rows)) for r in sorted(merged))
        return _polygon_frame(records, src.grid, min_area, simplify, class_names, area_crs)

    n_strips = -(-src.grid.height // strip_rows)
    with progress_bar(description or "polygons", n_strips) as bar:
        for window in strip_windows(src.grid, strip_rows):
            data, valid = src.read(window)
            classes = data[0]
            mask = _foreground(classes, valid, background)
            if nodata is not None:
                mask &= classes != nodata
            strip = comps.add(mask, classes)
            at_rows = Affine.translation(0, window.row_off)
            for geom, value in features.shapes(strip.local, mask=strip.local > 0, transform=at_rows, connectivity=4):
                pieces[strip.offset + int(value)] = shape(geom)  # one polygon per 4-connected piece
            bar.advance()
            chunk = complete(comps.open_roots())
            if len(chunk):
                yield chunk
    yield complete(np.zeros(0, np.int64))


def _foreground(classes: np.ndarray, valid: np.ndarray | None, background: int | None) -> np.ndarray:
    mask = np.ones(classes.shape, bool) if valid is None else valid.astype(bool)
    if background is not None:
        mask &= classes != background
    return mask


def _placed(polys: list, matrix: tuple[float, ...], strip_rows: int):
    """One region from its pieces (pixel coordinates, cut at multiples of ``strip_rows``), in CRS units."""
    from shapely.affinity import affine_transform

    return affine_transform(polys[0] if len(polys) == 1 else _merge_pieces(polys, strip_rows), matrix)


def _merge_pieces(polys: list, strip_rows: int):
    """Union of the pixel-space pieces of one 4-connected region, written as GDAL writes a region that it
    polygonized whole (the pieces' orientation, no vertex where a cut was, every ring and the list of
    holes starting at the first vertex in row-major order), so that ``simplify`` acts alike.

    A piece's own holes lie inside its strip and stay holes of the region as they are, so only the
    exteriors are united. Pieces meet only along strip boundaries; with a vertex at every pixel corner
    there they form a polygonal coverage, whose union is fast even for huge regions.
    """
    import shapely

    pieces = np.array(polys, dtype=object)
    ccw = polys[0].exterior.is_ccw
    exteriors = shapely.get_exterior_ring(pieces)
    shells = [shapely.polygons(_split_cut_edges(np.asarray(r.coords), strip_rows)) for r in exteriors]
    outline = shapely.coverage_union_all(shells)
    rings = shapely.get_rings(pieces)
    first_ring = np.cumsum(np.r_[0, shapely.get_num_interior_rings(pieces)[:-1] + 1])
    old_holes = np.delete(rings, first_ring)
    new_holes = [shapely.linearrings(_gdal_ring(h.coords, not ccw)) for h in outline.interiors]
    holes = np.concatenate([np.array(new_holes, dtype=object), old_holes])
    start = shapely.get_point(holes, 0)
    holes = holes[np.lexsort((shapely.get_x(start), shapely.get_y(start)))]
    return shapely.polygons(shapely.linearrings(_gdal_ring(outline.exterior.coords, ccw)), holes=holes)


def _split_cut_edges(xy: np.ndarray, strip_rows: int) -> np.ndarray:
    """Closed ring ``(n, 2)`` in pixel coordinates with a vertex at every pixel corner along its
    horizontal edges on strip boundaries (y a multiple of ``strip_rows``)."""
    a, b = xy[:-1], xy[1:]
    on_cut = (a[:, 1] == b[:, 1]) & (a[:, 1] % strip_rows == 0)
    n = np.where(on_cut, np.abs(b[:, 0] - a[:, 0]), 1).astype(np.int64)  # points per edge, its start included
    edge = np.repeat(np.arange(len(a)), n)
    step = np.arange(len(edge)) - np.repeat(np.cumsum(n) - n, n)
    x = a[edge, 0] + np.sign(b[edge, 0] - a[edge, 0]) * step
    return np.vstack([np.column_stack([x, a[edge, 1]]), xy[-1:]])


def _gdal_ring(coords, ccw: bool) -> np.ndarray:
    """A closed ring of integer pixel coordinates without collinear vertices, oriented ``ccw`` and
    starting at its first vertex in row-major order."""
    xy = np.asarray(coords)[:-1]
    prev, after = np.roll(xy, 1, axis=0), np.roll(xy, -1, axis=0)
    d0, d1 = xy - prev, after - xy
    straight = (d0[:, 0] * d1[:, 1] == d0[:, 1] * d1[:, 0]) & ((d0 * d1).sum(1) > 0)
    xy = xy[~straight]
    area2 = np.sum(xy[:, 0] * np.roll(xy[:, 1], -1) - np.roll(xy[:, 0], -1) * xy[:, 1])  # > 0: counter-clockwise
    if (area2 > 0) != ccw:
        xy = xy[::-1]
    xy = np.roll(xy, -int(np.lexsort((xy[:, 0], xy[:, 1]))[0]), axis=0)
    return np.vstack([xy, xy[:1]])


def _polygon_frame(
    records, grid: Grid, min_area: float, simplify: float, class_names: dict[int, str] | None, area_crs: Any = None
):
    """GeoDataFrame (``class_id``, ``class_name``, ``area``) of ``(class, polygon)`` records after
    simplification (CRS units) and the ``min_area`` filter (squared CRS units); ``area_crs`` as in
    :func:`polygon_areas`."""
    import geopandas as gpd

    kept = []
    for value, poly in records:
        if simplify > 0:
            poly = poly.simplify(simplify, preserve_topology=True)
        if poly.is_empty or poly.area < min_area:
            continue
        kept.append((value, poly))
    ids = [r[0] for r in kept]
    frame = {"class_id": ids}
    if class_names:
        frame["class_name"] = [class_names.get(i, str(i)) for i in ids]
    gdf = gpd.GeoDataFrame(frame, geometry=[r[1] for r in kept], crs=grid.crs)
    gdf["area"] = polygon_areas(gdf, area_crs)
    return gdf


def polygon_areas(gdf, area_crs: Any = None) -> np.ndarray:
    """Polygon areas in m^2 for geographic CRSs (in ``area_crs``, default the UTM zone of ``gdf``'s
    centre), else in squared CRS units."""
    if len(gdf) == 0:
        return np.zeros(0)
    if gdf.crs is not None and gdf.crs.is_geographic:
        return gdf.to_crs(area_crs or gdf.estimate_utm_crs()).geometry.area.to_numpy()
    return gdf.geometry.area.to_numpy()


def _area_crs(grid: Grid):
    """The UTM zone of ``grid``'s centre when its CRS is geographic (so that chunks measure alike), else None."""
    import geopandas as gpd
    from shapely.geometry import box

    frame = gpd.GeoSeries([box(*grid.bounds)], crs=grid.crs)
    return frame.estimate_utm_crs() if frame.crs is not None and frame.crs.is_geographic else None


def frame_crs(crs: Any):
    """The CRS (pyproj, or None when unset) a GeoDataFrame gets from ``crs`` (e.g. a raster's)."""
    import geopandas as gpd

    return gpd.GeoSeries([], crs=crs or None).crs


def require_features(gdf, path: str | os.PathLike, what: str = "features") -> None:
    """Raise EmptyDataError when a vector file holds no usable geometry."""
    if len(gdf) == 0:
        raise EmptyDataError(f"{path} holds no {what}; give a file with at least one geometry")


def rasterize_geometries(
    geometries: Sequence[Any],
    grid: Grid,
    window=None,
    values: Sequence[float] | None = None,
    fill: float = 0,
    dtype: str = "uint8",
    all_touched: bool = False,
) -> np.ndarray:
    """Burn a few shapely geometries (in ``grid``'s CRS) into a ``(rows, cols)`` array for ``window``.

    The light sibling of :func:`rasterize` for per-object work (no GeoDataFrame, no spatial index): the
    caller passes only the geometries that matter. ``values`` defaults to 1 for each.
    """
    from rasterio import features
    from rasterio.windows import Window

    if window is None:
        window = Window(0, 0, grid.width, grid.height)
    sub = grid.window_grid(window)
    out = np.full(sub.shape, fill, dtype=dtype)
    vals = [1] * len(geometries) if values is None else list(values)
    shapes = [(g, v) for g, v in zip(geometries, vals) if g is not None and not g.is_empty]
    if not shapes:
        return out
    return features.rasterize(
        shapes, out_shape=sub.shape, transform=sub.transform, fill=fill, dtype=dtype, all_touched=all_touched, out=out
    )


def vector_crs(path: str | os.PathLike) -> str:
    """The CRS of a vector file as text (``EPSG:32633``, else WKT; ``""`` when it has none), read from its header."""
    import pyogrio

    info = pyogrio.read_info(require_file(path, "vector file"))
    return info.get("crs") or ""


def iter_vector_chunks(path: str | os.PathLike, rows: int = 50_000) -> Iterator[Any]:
    """The features of a vector file as GeoDataFrames of at most ``rows`` rows (at least one, maybe empty):
    memory is one chunk, not the file."""
    import pyogrio

    path = require_file(path, "vector file")
    total = pyogrio.read_info(path)["features"]
    start = 0
    while True:
        chunk = pyogrio.read_dataframe(path, skip_features=start, max_features=rows)
        yield chunk
        start += rows
        if start >= total:
            return


# -- masks from vector files (soil-sample's field constraints) ---------------------------------------


def _metric_crs(gdf):
    """A CRS in metres for buffering ``gdf``: its own when projected in metres, else its local UTM zone."""
    crs = gdf.crs
    if crs is not None and crs.is_projected and crs.axis_info and crs.axis_info[0].unit_name in ("metre", "meter"):
        return crs
    return gdf.estimate_utm_crs()


def buffer_metres(gdf, metres: float):
    """Buffer every geometry by ``metres`` of ground distance, returned in ``gdf``'s CRS.

    Buffers are drawn in a metric CRS (the frame's own, or its UTM zone for geographic/foot CRSs). The
    buffer polygon is inscribed in the true circle/stadium, so a point inside it is never farther than
    ``metres`` from the feature.
    """
    metric = _metric_crs(gdf)
    work = gdf.to_crs(metric) if metric != gdf.crs else gdf
    buffered = work.geometry.buffer(float(metres), quad_segs=16)
    out = gdf.copy()
    out["geometry"] = buffered.to_crs(gdf.crs).values if metric != gdf.crs else buffered.values
    return out.set_geometry("geometry")


def near_mask(path: str | os.PathLike, grid: Grid, metres: float, raster_name: str | None = None) -> np.ndarray:
    """``(rows, cols)`` bool: cells of ``grid`` whose centre is within ``metres`` of a feature of ``path``
    (roads, tracks: lines, points or polygons in any CRS)."""
    gdf = read_vector(path, target=grid, raster_name=raster_name)
    require_features(gdf, path, "features")
    return rasterize(buffer_metres(gdf, metres), grid).astype(bool)


def polygon_mask(path: str | os.PathLike, grid: Grid, raster_name: str | None = None,
                 require_overlap: bool = True) -> np.ndarray:
    """``(rows, cols)`` bool: cells of ``grid`` whose centre is inside a polygon of ``path``."""
    gdf = polygon_features(path, grid, raster_name, require_overlap)
    return rasterize(gdf, grid).astype(bool)


def polygon_features(path: str | os.PathLike, grid: Grid, raster_name: str | None = None, require_overlap: bool = True):
    """The (multi)polygons of ``path`` in ``grid``'s CRS; a file without polygons is an error naming it."""
    gdf = read_vector(path, target=grid, raster_name=raster_name, require_overlap=require_overlap)
    return require_polygons(gdf, path, "give a polygon layer").reset_index(drop=True)


def require_polygons(gdf, path: str | os.PathLike, fix: str):
    """The (multi)polygons of ``gdf``, read from ``path``. Points and lines cover no pixels: a file of nothing
    else is an InputFileError ending in ``fix``; in a mixed file they are dropped, with a note."""
    polygonal = gdf.geometry.geom_type.isin(["Polygon", "MultiPolygon"]).to_numpy()
    if not polygonal.any():
        found = ", ".join(sorted(set(gdf.geometry.geom_type.dropna()))) or "no"
        raise InputFileError(f"{path} holds {found} geometries, which cover no pixels; {fix}")
    if not polygonal.all():
        log.warning("%s: %d point or line features dropped (they cover no pixels); %d polygons kept", path,
                    int((~polygonal).sum()), int(polygonal.sum()))
        gdf = gdf[polygonal]
    return gdf


def rasterize_polygons(geometries, values, shape: tuple[int, int], transform, dtype: str = "uint8",
                       fill: float = 0) -> np.ndarray:
    """Burn (multi)polygons into a ``shape`` array by pixel centre, as GDAL does by default, in numpy.

    Vectorised scanlines over every edge at once (no per-geometry Python, no GeoJSON mappings): each pixel
    row's centre line cuts the edges of each feature; spans between pairs of cuts (even-odd, so holes
    stay empty) are filled. Later geometries overwrite earlier ones. ``transform`` must be north-up
    (no rotation); others go through :func:`rasterio.features.rasterize`.

    Args:
        geometries: shapely (multi)polygons in the CRS of ``transform`` (others are ignored).
        values: burn value of each geometry.
        shape: ``(rows, cols)`` of the output.
        transform: affine pixel -> CRS transform of the output.
    """
    import shapely
    from rasterio import features

    out = np.full(shape, fill, dtype)
    geoms = np.asarray(geometries, dtype=object)
    values = np.asarray(values)
    if not len(geoms):
        return out
    if transform.b != 0 or transform.d != 0:
        return features.rasterize(zip(geoms, values.tolist()), out_shape=shape, transform=transform, fill=fill,
                                  dtype=dtype, out=out)
    height, width = shape
    polygonal = np.isin(shapely.get_type_id(geoms), (3, 6))  # Polygon, MultiPolygon
    parts, feature = shapely.get_parts(geoms[polygonal], return_index=True)
    feature = np.flatnonzero(polygonal)[feature]
    rings, ring_part = shapely.get_rings(parts, return_index=True)
    xy, ring = shapely.get_coordinates(rings, return_index=True)
    px = (xy[:, 0] - transform.c) / transform.a
    py = (xy[:, 1] - transform.f) / transform.e
    edge = ring[1:] == ring[:-1]  # consecutive vertices of one (closed) ring
    x0, y0, x1, y1 = px[:-1][edge], py[:-1][edge], px[1:][edge], py[1:][edge]
    owner = feature[ring_part[ring[:-1][edge]]]
    # rows whose centre (r + 0.5) lies in [min y, max y) of the edge; horizontal edges cut none
    r0 = np.clip(np.ceil(np.minimum(y0, y1) - 0.5), 0, height).astype(np.int64)
    r1 = np.clip(np.ceil(np.maximum(y0, y1) - 0.5), 0, height).astype(np.int64)
    n = np.maximum(r1 - r0, 0)
    if not n.sum():
        return out
    e = np.repeat(np.arange(len(n)), n)
    rows = r0[e] + np.arange(len(e)) - np.repeat(np.cumsum(n) - n, n)
    cut = x0[e] + (rows + 0.5 - y0[e]) * (x1[e] - x0[e]) / (y1[e] - y0[e])
    who = owner[e]
    order = np.lexsort((cut, rows, who))
    who, rows, cut = who[order], rows[order], cut[order]
    new = np.r_[True, (who[1:] != who[:-1]) | (rows[1:] != rows[:-1])]
    rank = np.arange(len(who)) - np.maximum.accumulate(np.where(new, np.arange(len(who)), 0))
    a = np.flatnonzero(rank % 2 == 0)
    a = a[a + 1 < len(who)]
    a = a[(who[a + 1] == who[a]) & (rows[a + 1] == rows[a])]
    c0 = np.clip(np.ceil(cut[a] - 0.5), 0, width).astype(np.int64)
    c1 = np.clip(np.ceil(cut[a + 1] - 0.5), 0, width).astype(np.int64)
    keep = c1 > c0
    a, c0, c1 = a[keep], c0[keep], c1[keep]
    rows, who = rows[a], who[a]
    by_row = np.lexsort((c0, rows))
    rs, s0, s1 = rows[by_row], c0[by_row], c1[by_row]
    if not ((rs[1:] == rs[:-1]) & (s0[1:] < s1[:-1])).any():
        # no two spans of a row overlap (the usual case): mark span ends and sum along rows
        vals = values[who].astype(np.int64)
        acc = np.zeros((height, width + 1), np.int64)
        cover = np.zeros((height, width + 1), np.int32)
        np.add.at(acc, (rows, c0), vals)
        np.add.at(acc, (rows, c1), -vals)
        np.add.at(cover, (rows, c0), 1)
        np.add.at(cover, (rows, c1), -1)
        covered = np.cumsum(cover, axis=1)[:, :width] > 0
        out[covered] = np.cumsum(acc, axis=1)[:, :width][covered].astype(dtype)
        return out
    m = c1 - c0
    s = np.repeat(np.arange(len(m)), m)
    cols = c0[s] + np.arange(len(s)) - np.repeat(np.cumsum(m) - m, m)
    flat = rows[s] * width + cols
    last = np.full(height * width, -1, np.int64)
    np.maximum.at(last, flat, who[s])  # the latest geometry covering a pixel wins
    hit = last >= 0
    out.ravel()[hit] = values[last[hit]].astype(dtype)
    return out

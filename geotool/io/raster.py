"""Rasters: grids, stacks of GeoTIFFs read window by window, and atomic tiled GeoTIFF writing.

Conventions:
- Arrays are ``(bands, rows, cols)``; windows are :class:`rasterio.windows.Window` in pixels.
- A :class:`Grid` is the georeference (CRS, affine transform, size) that every output copies.
- Validity is a boolean mask, True where every selected band holds data (not nodata, not NaN, not
  masked by an alpha band). Nodata is never silently filled with zeros.
"""

from __future__ import annotations

import math
import os
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Literal, Mapping, Sequence

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import ColorInterp, MaskFlags, Resampling
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window

from geotool.errors import BandError, CRSError, EmptyDataError, InputFileError, RasterMismatchError
from geotool.io.atomic import atomic_path, signals_deferred
from geotool.io.gdal_cache import gdal_cache
from geotool.io.files import expand_inputs, require_file

if TYPE_CHECKING:
    from geotool.io.finishing import Finishing

ResamplingName = Literal["nearest", "bilinear", "cubic", "average", "mode"]


@dataclass(frozen=True)
class Grid:
    """A raster georeference: CRS, affine transform (pixel -> CRS units) and size in pixels."""

    crs: CRS | None
    transform: Affine
    width: int
    height: int

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, cols)."""
        return (self.height, self.width)

    @property
    def res(self) -> tuple[float, float]:
        """Pixel size (x, y) in CRS units, both positive."""
        return (abs(self.transform.a), abs(self.transform.e))

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(left, bottom, right, top) in CRS units."""
        return rasterio.windows.bounds(Window(0, 0, self.width, self.height), self.transform)

    def window_transform(self, window: Window) -> Affine:
        """Affine transform of a window of this grid."""
        return rasterio.windows.transform(window, self.transform)

    def window_grid(self, window: Window) -> "Grid":
        """The sub-grid covered by ``window`` (rounded to whole pixels)."""
        window = window.round_offsets().round_lengths()
        return Grid(self.crs, self.window_transform(window), int(window.width), int(window.height))

    def xy(self, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """CRS coordinates of pixel centres."""
        rows = np.asarray(rows, dtype=np.float64)
        cols = np.asarray(cols, dtype=np.float64)
        x, y = self.transform * (cols + 0.5, rows + 0.5)
        return np.asarray(x), np.asarray(y)

    def rowcol(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Row and column (integers) of the pixels containing CRS points; may fall outside the grid."""
        inv = ~self.transform
        cols, rows = inv * (np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64))
        return np.floor(rows).astype(np.int64), np.floor(cols).astype(np.int64)

    def same_as(self, other: "Grid", tol: float = 1e-6) -> bool:
        """True when CRS, size and transform agree (transform within ``tol`` of a pixel)."""
        return not self.differences(other, tol)

    def differences(self, other: "Grid", tol: float = 1e-6) -> list[str]:
        """Human-readable list of how ``other`` differs from this grid (empty when aligned)."""
        diffs = []
        if (self.crs is None) != (other.crs is None) or (self.crs is not None and self.crs != other.crs):
            diffs.append(f"CRS {crs_name(other.crs)} instead of {crs_name(self.crs)}")
        if (self.width, self.height) != (other.width, other.height):
            diffs.append(f"size {other.width}x{other.height} instead of {self.width}x{self.height} pixels")
        scale = max(self.res)
        if not all(math.isclose(a, b, abs_tol=tol * scale) for a, b in zip(self.transform[:6], other.transform[:6])):
            if not np.allclose(self.res, other.res, rtol=1e-9, atol=tol * scale):
                diffs.append(f"pixel size {other.res[0]:g}x{other.res[1]:g} instead of {self.res[0]:g}x{self.res[1]:g}")
            else:
                diffs.append(
                    f"origin ({other.transform.c:.3f}, {other.transform.f:.3f}) instead of "
                    f"({self.transform.c:.3f}, {self.transform.f:.3f})"
                )
        return diffs


def crs_name(crs: CRS | None) -> str:
    """Short CRS name for messages: ``EPSG:32633`` or the WKT name."""
    if crs is None:
        return "no CRS"
    epsg = crs.to_epsg()
    if epsg is not None:
        return f"EPSG:{epsg}"
    try:
        return crs.to_string()
    except Exception:  # noqa: BLE001 - only for messages
        return "a custom CRS"


def _open_dataset(path: Path):
    """Open a raster with rasterio, turning GDAL's complaints into a one-line InputFileError."""
    require_file(path, "raster")
    try:
        return rasterio.open(path)
    except rasterio.errors.RasterioIOError as exc:
        reason = str(exc).splitlines()[0]
        if "not recognized as" in reason or "not a supported file format" in reason:
            reason = "not a raster format GDAL can read"
        raise InputFileError(f"{path} is not a readable raster ({reason}); give a GeoTIFF") from None


def grid_of(dataset) -> Grid:
    """The :class:`Grid` of an open rasterio dataset."""
    return Grid(dataset.crs, dataset.transform, dataset.width, dataset.height)


def read_grid(path: str | os.PathLike) -> Grid:
    """Open a raster just long enough to read its grid."""
    with _open_dataset(Path(path)) as ds:
        return grid_of(ds)


@dataclass(frozen=True)
class BandRef:
    """One band of a stack: which file, which 1-based band in it, its name and nodata value."""

    source: int
    band: int
    name: str
    nodata: float | None
    dtype: str
    is_alpha: bool = False


@dataclass
class RasterStack:
    """A fully read stack: data ``(bands, rows, cols)``, validity ``(rows, cols)`` and its grid."""

    data: np.ndarray
    valid: np.ndarray
    grid: Grid
    band_names: list[str]
    nodata: list[float | None]
    dtypes: list[str]
    paths: list[Path] = field(default_factory=list)


class RasterSource:
    """One or more GeoTIFFs (single- or multi-band) on one grid, read window by window.

    Rasters must share CRS, transform and size with the first file; the error names the file that
    differs and how. With ``resample`` set, differing files are warped on the fly onto the first file's
    grid instead (``WarpedVRT``), still window by window.

    Bands are selected by 1-based index over the concatenated band list of all files, or by band
    description (as set in the GeoTIFF). By default every band except alpha bands is used; an alpha
    band still masks pixels out.

    Use as a context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        paths: str | os.PathLike | Sequence[str | os.PathLike],
        bands: Sequence[int | str] | None = None,
        nodata: float | None = None,
        resample: ResamplingName | None = None,
        require_crs: bool = True,
    ) -> None:
        if isinstance(paths, (str, os.PathLike)):
            paths = [paths]
        self.paths = expand_inputs(paths, what="raster")
        if not self.paths:
            raise InputFileError("no raster given; pass at least one GeoTIFF")
        self._stack = ExitStack()
        try:
            self._open(bands, nodata, resample, require_crs)
        except BaseException:
            self._stack.close()
            raise

    def _open(self, bands, nodata, resample, require_crs) -> None:
        self._files = []  # the files as opened: their band lists define band numbers
        self._datasets = []  # what is read: the file, or a WarpedVRT onto the first grid
        self._warp_alpha: dict[int, int] = {}  # dataset index -> alpha band marking warped-in pixels
        first = None
        for path in self.paths:
            ds = self._stack.enter_context(_open_dataset(path))
            self._files.append(ds)
            if ds.crs is None and require_crs:
                raise CRSError(f"{path} has no CRS; assign one (e.g. gdal_edit.py -a_srs EPSG:XXXX {path.name})")
            grid = grid_of(ds)
            if first is None:
                first = grid
            else:
                diffs = first.differences(grid)
                if diffs:
                    if resample is None:
                        raise RasterMismatchError(
                            f"{path} is not on the grid of {self.paths[0]}: {'; '.join(diffs)}; "
                            "reproject it onto the first file's grid, or pass --resample to resample on the fly"
                        )
                    if ds.crs is None:
                        raise CRSError(f"{path} has no CRS, so it cannot be resampled onto {self.paths[0]}")
                    ds = self._stack.enter_context(
                        WarpedVRT(
                            ds,
                            crs=first.crs,
                            transform=first.transform,
                            width=first.width,
                            height=first.height,
                            resampling=Resampling[resample],
                            add_alpha=True,
                        )
                    )
                    self._warp_alpha[len(self._datasets)] = ds.count
            self._datasets.append(ds)
        self.grid: Grid = first
        self._all_bands = self._band_table(nodata)
        self.bands: list[BandRef] = self._select(bands)
        self._alpha = [b for b in self._all_bands if b.is_alpha]
        self.nodata_override = nodata
        self._bands_by_source: dict[int, list[int]] = {}
        for i, ref in enumerate(self.bands):
            self._bands_by_source.setdefault(ref.source, []).append(i)
        self._all_valid = {
            (ref.source, ref.band): self._datasets[ref.source].mask_flag_enums[ref.band - 1] == [MaskFlags.all_valid]
            for ref in self.bands
        }

    def _band_table(self, nodata_override: float | None) -> list[BandRef]:
        table = []
        multi = len(self.paths) > 1
        for i, (path, ds) in enumerate(zip(self.paths, self._files)):
            for b in range(1, ds.count + 1):
                desc = ds.descriptions[b - 1]
                name = desc or (path.stem if (multi and ds.count == 1) else f"{path.stem}_b{b}" if multi else f"b{b}")
                nd = nodata_override if nodata_override is not None else ds.nodatavals[b - 1]
                is_alpha = ds.colorinterp[b - 1] == ColorInterp.alpha
                table.append(BandRef(i, b, name, nd, ds.dtypes[b - 1], is_alpha))
        return table

    def _select(self, bands: Sequence[int | str] | None) -> list[BandRef]:
        if bands is None:
            chosen = [b for b in self._all_bands if not b.is_alpha] or list(self._all_bands)
            return chosen
        chosen = []
        names = [b.name for b in self._all_bands]
        for sel in bands:
            if isinstance(sel, int) or (isinstance(sel, str) and sel.isdigit()):
                idx = int(sel)
                if not 1 <= idx <= len(self._all_bands):
                    raise BandError(
                        f"band {idx} is out of range: {self._describe_files()} has {len(self._all_bands)} band(s); "
                        f"use 1..{len(self._all_bands)}"
                    )
                chosen.append(self._all_bands[idx - 1])
            else:
                if sel not in names:
                    raise BandError(
                        f"no band described {sel!r} in {self._describe_files()}; available: {', '.join(names)}"
                    )
                chosen.append(self._all_bands[names.index(sel)])
        return chosen

    def _describe_files(self) -> str:
        return str(self.paths[0]) if len(self.paths) == 1 else f"the stack {', '.join(map(str, self.paths))}"

    # -- properties ---------------------------------------------------------------------------

    @property
    def count(self) -> int:
        """Number of selected bands."""
        return len(self.bands)

    @property
    def total_band_count(self) -> int:
        """Number of bands in all files together, alpha bands included (band numbers run 1..this)."""
        return len(self._all_bands)

    @property
    def band_names(self) -> list[str]:
        """Names (descriptions, or ``b1``... / ``<file>_b1``...) of the selected bands."""
        return [b.name for b in self.bands]

    @property
    def dtypes(self) -> list[str]:
        """NumPy dtype names of the selected bands."""
        return [b.dtype for b in self.bands]

    @property
    def nodata(self) -> list[float | None]:
        """Nodata value of each selected band (``None`` when the file declares none)."""
        return [b.nodata for b in self.bands]

    @property
    def dtype(self) -> np.dtype:
        """A dtype that holds every selected band."""
        return np.result_type(*[np.dtype(d) for d in self.dtypes])

    @property
    def profile(self) -> dict[str, Any]:
        """The first file's rasterio profile (driver, dtype, nodata, CRS, transform...)."""
        return dict(self._datasets[0].profile)

    def close(self) -> None:
        """Close every open dataset."""
        self._stack.close()

    def __enter__(self) -> "RasterSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- reading ------------------------------------------------------------------------------

    def read(
        self,
        window: Window | None = None,
        dtype: np.dtype | str | None = None,
        fill: float = 0,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Read selected bands and the validity mask in ``window`` (the whole grid when None).

        Windows may extend past the raster edge: outside pixels get ``fill`` and are invalid.

        Returns:
            data: ``(bands, rows, cols)`` in ``dtype`` (default: the stack's common dtype).
            valid: ``(rows, cols)`` bool, True where every selected band (and any alpha band) has data.
        """
        if window is None:
            window = Window(0, 0, self.grid.width, self.grid.height)
        window = Window(int(window.col_off), int(window.row_off), int(window.width), int(window.height))
        out_dtype = np.dtype(dtype) if dtype is not None else self.dtype
        h, w = int(window.height), int(window.width)
        data = np.empty((self.count, h, w), dtype=out_dtype)
        valid = np.ones((h, w), dtype=bool)
        inside = Window(0, 0, self.grid.width, self.grid.height)
        try:
            core = window.intersection(inside)
        except rasterio.errors.WindowError:
            data[:] = fill
            valid[:] = False
            return data, valid
        r0, c0 = int(core.row_off - window.row_off), int(core.col_off - window.col_off)
        rs, cs = slice(r0, r0 + int(core.height)), slice(c0, c0 + int(core.width))
        if (int(core.height), int(core.width)) != (h, w):
            data[:] = fill
            valid[:] = False
            valid[rs, cs] = True
        # one read per file for all its selected bands: GDAL decodes each (pixel-interleaved) tile once
        for source, positions in self._bands_by_source.items():
            ds = self._datasets[source]
            refs = [self.bands[i] for i in positions]
            arrays = ds.read([ref.band for ref in refs], window=core)
            for i, ref, arr in zip(positions, refs, arrays):
                valid[rs, cs] &= self._band_valid(ds, ref, arr, core)
                data[i, rs, cs] = arr.astype(out_dtype, copy=False)
        for ref in self._alpha:
            if ref in self.bands:
                continue
            alpha = self._datasets[ref.source].read(ref.band, window=core)
            valid[rs, cs] &= alpha > 0
        for source in sorted({ref.source for ref in self.bands} & set(self._warp_alpha)):
            warped = self._datasets[source].read(self._warp_alpha[source], window=core)
            valid[rs, cs] &= warped > 0  # pixels the warp had no source data for
        return data, valid

    def read_valid_decimated(self, shape: tuple[int, int]) -> np.ndarray:
        """``shape`` bool: GDAL's validity masks of the selected (and alpha) bands read at ``shape`` (nearest;
        from overviews when present), True where all are valid: a cheap look at a scene's data coverage."""
        valid = np.ones(shape, bool)
        for ref in list(self.bands) + [a for a in self._alpha if a not in self.bands]:
            ds = self._datasets[ref.source]
            valid &= ds.read_masks(ref.band, out_shape=shape, resampling=Resampling.nearest) > 0
        return valid

    def _band_valid(self, ds, ref: BandRef, arr: np.ndarray, window: Window) -> np.ndarray:
        if ref.nodata is None:
            if self._all_valid[(ref.source, ref.band)]:
                ok = np.ones(arr.shape, bool)  # no mask, no alpha, no nodata: GDAL's mask would be all 255
            else:
                ok = ds.read_masks(ref.band, window=window) > 0  # internal mask or alpha
        elif np.isnan(ref.nodata):
            ok = ~np.isnan(arr)
        elif check_nodata_fits(ref.nodata, arr.dtype) is None:
            ok = np.ones(arr.shape, bool)  # the value cannot occur in this dtype
        else:
            ok = arr != np.asarray(ref.nodata, dtype=arr.dtype)
        if arr.dtype.kind == "f":
            ok &= np.isfinite(arr)
        return ok

    def read_stack(self, dtype: np.dtype | str | None = None) -> RasterStack:
        """Read the whole grid into memory (for small rasters: soil covariates, label masks)."""
        data, valid = self.read(dtype=dtype)
        return RasterStack(data, valid, self.grid, self.band_names, self.nodata, self.dtypes, list(self.paths))


def check_sources(
    paths: Sequence[str | os.PathLike],
    bands: Sequence[int | str] | None = None,
    nodata: float | None = None,
    check: "Callable[[RasterSource, str], None] | None" = None,
    band_context: str = "",
) -> None:
    """Open every raster with the given band selection and run ``check(source, path)`` on it, before any
    output is written: a batch refuses a bad input up front instead of after earlier outputs exist.

    ``band_context`` is said after the file name when the band selection itself does not fit
    (e.g. "does not hold the bands the model was trained on").

    Raises:
        GeotoolError: the first input that cannot be opened, lacks the bands, or fails ``check``.
    """
    for path in paths:
        try:
            src = RasterSource(path, bands=bands, nodata=nodata)
        except BandError as exc:
            if not band_context:
                raise
            raise BandError(f"{path} {band_context}: {exc}") from None
        with src:
            if check is not None:
                check(src, str(path))


def read_stack(
    paths: str | os.PathLike | Sequence[str | os.PathLike],
    bands: Sequence[int | str] | None = None,
    nodata: float | None = None,
    resample: ResamplingName | None = None,
    dtype: np.dtype | str | None = None,
) -> RasterStack:
    """Read a whole stack of aligned GeoTIFFs (see :class:`RasterSource`) into memory."""
    with RasterSource(paths, bands=bands, nodata=nodata, resample=resample) as src:
        return src.read_stack(dtype=dtype)


# -- writing ----------------------------------------------------------------------------------


BLOCK = 256
#: Tile side of every GeoTIFF written, pixels (the engine writes rows in multiples of it).

#: GDAL block cache while a COG is copied, bytes: the copy reads and writes tile rows in order, so a few of
#: them suffice, and peak memory stays independent of the scene size.
COG_CACHE_BYTES = 128 * 2**20

#: Class palette (RGBA) for class rasters written with ``categories``: background grey, then distinct hues.
CLASS_COLOURS = [(190, 190, 190, 255), (228, 26, 28, 255), (55, 126, 184, 255), (77, 175, 74, 255), (152, 78, 163, 255),
                 (255, 127, 0, 255), (255, 255, 51, 255), (166, 86, 40, 255), (247, 129, 191, 255), (0, 206, 209, 255)]


def band_color_interp(default: Sequence, names: Sequence[str] | None) -> list:
    """Output bands' colour interpretation: GDAL's default, but never alpha (geotool marks missing data with
    nodata; GDAL would take the 4th band of a uint8 file, a NIR band say, for transparency and GIS tools and
    readers would drop it) and red/green/blue where the band's name says so."""
    from rasterio.enums import ColorInterp

    known = {"red": ColorInterp.red, "green": ColorInterp.green, "blue": ColorInterp.blue}
    names = list(names or [])
    out = []
    for i, interp in enumerate(default):
        name = str(names[i]).lower() if i < len(names) else ""
        out.append(known.get(name, ColorInterp.undefined if interp == ColorInterp.alpha else interp))
    return out


def _creation_options(dtype: np.dtype, width: int, height: int, block: int = BLOCK) -> dict[str, Any]:
    """GTiff options of a file written block by block: tiled, deflate (the final outputs without COG)."""
    from geotool.io.gdal_settings import compression_threads

    opts: dict[str, Any] = {"compress": "deflate", "BIGTIFF": "IF_SAFER", "NUM_THREADS": compression_threads()}
    if width >= block and height >= block:
        opts.update(tiled=True, blockxsize=block, blockysize=block)
    opts["predictor"] = 3 if np.dtype(dtype).kind == "f" else 2
    return opts


#: Largest stream file (pixels plus overviews, bytes) kept uncompressed; above it the stream is ZSTD level 1, so
#: a huge scene's temp file stays a fraction of its raw size on disk (at some CPU: see BENCHMARKS.md).
STREAM_RAW_MAX_BYTES = 4 * 2**30


def _stream_raw(dtype: np.dtype, count: int, width: int, height: int) -> bool:
    """Whether the stream file of an output this size is written uncompressed (see :data:`STREAM_RAW_MAX_BYTES`)."""
    return np.dtype(dtype).itemsize * count * width * height * 4 / 3 <= STREAM_RAW_MAX_BYTES


def _stream_options(dtype: np.dtype, count: int, width: int, height: int) -> dict[str, Any]:
    """GTiff options of the intermediate a COG is copied from: tiled like the COG and, up to
    :data:`STREAM_RAW_MAX_BYTES`, uncompressed. It lives only until the copy, whose DEFLATE is then the only
    compression each pixel goes through (a ZSTD stream cost a compression and a decompression more)."""
    from geotool.io.gdal_settings import compression_threads

    opts: dict[str, Any] = {"tiled": True, "blockxsize": BLOCK, "blockysize": BLOCK, "BIGTIFF": "IF_SAFER"}
    if _stream_raw(dtype, count, width, height):
        opts["compress"] = "none"
    else:
        opts.update(compress="zstd", zstd_level=1, predictor=3 if np.dtype(dtype).kind == "f" else 2,
                    NUM_THREADS=compression_threads())
    return opts


def cog_overview_factors(width: int, height: int, block: int = BLOCK) -> list[int]:
    """The overview factors GDAL's COG driver makes with ``OVERVIEWS=AUTO``: halve until both sides fit one block."""
    factors, f = [], 1
    while -(-width // f) > block or -(-height // f) > block:
        f *= 2
        factors.append(f)
    return factors


def _cog_options(dtype: np.dtype, resampling: str, overviews: str = "FORCE_USE_EXISTING") -> dict[str, Any]:
    """COG driver options: the same tiles, deflate and predictor as the plain outputs; the internal overviews
    are the stream file's own (``FORCE_USE_EXISTING``), built beforehand by :meth:`RasterWriter._build_cog`."""
    from geotool.io.gdal_settings import compression_threads

    return {"COMPRESS": "DEFLATE", "PREDICTOR": "YES", "BLOCKSIZE": BLOCK, "BIGTIFF": "IF_SAFER",
            "OVERVIEWS": overviews, "OVERVIEW_RESAMPLING": resampling, "NUM_THREADS": compression_threads()}


def default_class_colormap(n_classes: int, nodata: int | None = None) -> dict[int, tuple[int, int, int, int]]:
    """RGBA colour per class value 0..n-1 (cycling :data:`CLASS_COLOURS`); ``nodata`` transparent."""
    cmap = {i: CLASS_COLOURS[i % len(CLASS_COLOURS)] for i in range(n_classes)}
    if nodata is not None:
        cmap[int(nodata)] = (0, 0, 0, 0)
    return cmap


def category_xml(names: Sequence[str], colormap: Mapping[int, tuple[int, int, int, int]] | None) -> str:
    """GDAL PAM (``.aux.xml``) text giving band 1 category names and a thematic raster attribute table
    (value, class name, RGBA): GDAL's ``GetCategoryNames``/``GetDefaultRAT`` and QGIS's legend read it. GeoTIFF
    has no tag for either, so GDAL itself keeps them in this sidecar."""
    from xml.sax.saxutils import escape

    colormap = colormap or {}
    cats = "".join(f"<Category>{escape(str(n))}</Category>" for n in names)
    fields = [("Value", 0, 5), ("Class", 2, 2), ("Red", 0, 6), ("Green", 0, 7), ("Blue", 0, 8), ("Alpha", 0, 9)]
    defs = "".join(f'<FieldDefn index="{i}"><Name>{n}</Name><Type>{ty}</Type><Usage>{u}</Usage></FieldDefn>'
                   for i, (n, ty, u) in enumerate(fields))
    rows = []
    for i, name in enumerate(names):
        r, g, b, a = colormap.get(i, (0, 0, 0, 255))
        rows.append(f'<Row index="{i}"><F>{i}</F><F>{escape(str(name))}</F><F>{r}</F><F>{g}</F><F>{b}</F><F>{a}</F></Row>')
    return ('<PAMDataset>\n  <PAMRasterBand band="1">\n    <CategoryNames>' + cats + '</CategoryNames>\n'
            '    <GDALRasterAttributeTable tableType="thematic">' + defs + "".join(rows) + '</GDALRasterAttributeTable>\n'
            '  </PAMRasterBand>\n</PAMDataset>\n')


def check_nodata_fits(nodata: float | None, dtype: np.dtype | str) -> float | None:
    """Return ``nodata`` if ``dtype`` can represent it, else None (e.g. -99999 cannot be uint8)."""
    if nodata is None:
        return None
    dtype = np.dtype(dtype)
    if np.isnan(nodata):
        return nodata if dtype.kind == "f" else None
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return nodata if info.min <= nodata <= info.max and float(nodata).is_integer() else None
    return nodata


class RasterWriter:
    """Write a GeoTIFF block by block into a temp file; rename it to the target only on success.

    The output is a Cloud-Optimized GeoTIFF (GDAL's COG layout: 256 x 256 tiles, deflate, internal overviews,
    the directories ahead of the pixels) with the given grid's CRS and transform and the given nodata: blocks
    stream into a hidden, uncompressed tiled GeoTIFF beside the target (ZSTD level 1 above
    :data:`STREAM_RAW_MAX_BYTES`), which gets the overviews GDAL's COG driver would make and is then copied by
    that driver, compressing every pixel once, into a second hidden file, renamed over the target. Overviews of
    class rasters (``categories`` or ``colormap`` given) are nearest-neighbour, of everything else nodata-aware averages.
    ``cog=False`` writes the tiled deflate GeoTIFF directly (no overviews). Use as a context manager; an
    exception inside the block deletes every temp file, so no half-written output is left.

    ``categories``: class names of values 0..n-1 (band 1). They go into a ``<target>.aux.xml`` beside the file
    (GDAL's own place for category names and attribute tables, read by GDAL and QGIS), written before the
    target appears; without a ``colormap`` one is made from :data:`CLASS_COLOURS`.

    Example:
        with RasterWriter(path, grid, count=1, dtype="uint8", nodata=255, categories=["background", "building"]) as out:
            out.write(block, window)
    """

    def __init__(
        self,
        path: str | os.PathLike,
        grid: Grid,
        count: int,
        dtype: np.dtype | str,
        nodata: float | None = None,
        band_names: Sequence[str] | None = None,
        colormap: dict[int, tuple[int, int, int, int]] | None = None,
        tags: dict[str, str] | None = None,
        categories: Sequence[str] | None = None,
        cog: bool = True,
    ) -> None:
        self.path = Path(path)
        self.grid = grid
        self.count = count
        self.dtype = np.dtype(dtype)
        self.nodata = nodata
        self.band_names = list(band_names) if band_names else None
        self.categories = list(categories) if categories else None
        if self.categories and colormap is None:
            colormap = default_class_colormap(len(self.categories), nodata if nodata is not None else None)
        self.colormap = colormap
        self.tags = tags or {}
        self.cog = cog
        self._atomic = None
        self._ds = None
        self._tmp: Path | None = None
        self._stream: Path | None = None
        self._prepared = False

    def __enter__(self) -> "RasterWriter":
        self._atomic = atomic_path(self.path)
        self._tmp = self._atomic.__enter__()
        # the stream file's name starts with the temp file's, so atomic_path's cleanup removes it on failure
        self._stream = self._tmp.with_name(self._tmp.name + ".stream.tif") if self.cog else self._tmp
        w, h = self.grid.width, self.grid.height
        options = _stream_options(self.dtype, self.count, w, h) if self.cog else _creation_options(self.dtype, w, h)
        profile = dict(
            driver="GTiff",
            width=self.grid.width,
            height=self.grid.height,
            count=self.count,
            dtype=self.dtype.name,
            crs=self.grid.crs,
            transform=self.grid.transform,
            nodata=self.nodata,
            **options,
        )
        try:
            self._ds = rasterio.open(self._stream, "w", **profile)
            if self.band_names:
                for i, name in enumerate(self.band_names, start=1):
                    self._ds.set_band_description(i, name)
            if self.count > 1 and self.colormap is None:
                self._ds.colorinterp = band_color_interp(self._ds.colorinterp, self.band_names)
            if self.tags:
                self._ds.update_tags(**self.tags)
            if self.colormap is not None:  # before any pixel: libtiff cannot change the photometric tag later
                self._ds.write_colormap(1, self.colormap)
        except BaseException as exc:
            if self._ds is not None:
                self._ds.close()
            self._atomic.__exit__(type(exc), exc, exc.__traceback__)
            raise
        return self

    def write(self, data: np.ndarray, window: Window | None = None) -> None:
        """Write ``(bands, rows, cols)`` (or ``(rows, cols)`` for one band) into ``window``."""
        if data.ndim == 2:
            data = data[None]
        self._ds.write(data.astype(self.dtype, copy=False), window=window)

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                self.prepare()
                self._finish()
            else:
                self._ds.close()
        except BaseException as error:
            self._atomic.__exit__(type(error), error, error.__traceback__)
            raise
        self._atomic.__exit__(exc_type, exc, tb)

    def prepare(self, set_cache: bool = True) -> None:
        """Close the stream and make the COG in the temp file (overviews and copy), without renaming it into place;
        ``__exit__`` then only writes the sidecar and renames. Done once (later calls return at once), so
        :func:`open_writers` can run it for several outputs at the same time. ``set_cache=False`` leaves GDAL's
        block cache (process-wide) to the caller, who holds it once for all of them."""
        if self._prepared:
            return
        self._ds.close()
        if self.cog:
            if set_cache:  # GDAL's default cache (5 % of RAM) would fill with the blocks of a large scene
                with gdal_cache(COG_CACHE_BYTES):
                    self._build_cog()
            else:
                self._build_cog()
        self._prepared = True

    def _build_cog(self) -> None:
        """Overviews on the stream file, then its COG copy into the temp file."""
        from rasterio.shutil import copy as gdal_copy

        from geotool.io.gdal_settings import compression_threads

        resampling = "NEAREST" if self.colormap is not None or self.categories is not None else "AVERAGE"
        factors = cog_overview_factors(self.grid.width, self.grid.height)
        if factors:
            # The overviews GDAL's COG driver would build (its factors and resampling, nodata-aware; each level
            # sized by rounding the factor's division up where the driver halves the level above rounding down),
            # stored as the stream is: the driver's own go through a temp file that it compresses and reads back
            # before compressing them again.
            raw = _stream_raw(self.dtype, self.count, self.grid.width, self.grid.height)
            ovr_env = {"COMPRESS_OVERVIEW": "NONE"} if raw else {
                "COMPRESS_OVERVIEW": "ZSTD", "ZSTD_LEVEL_OVERVIEW": "1",
                "PREDICTOR_OVERVIEW": "3" if self.dtype.kind == "f" else "2"}
            # TIFF_USE_OVR: an external .ovr beside the stream, as the driver makes its own
            with rasterio.Env(GDAL_NUM_THREADS=str(compression_threads()), TIFF_USE_OVR="YES", **ovr_env), \
                    rasterio.open(self._stream, "r+") as ds:
                ds.build_overviews(factors, Resampling[resampling.lower()])
        gdal_copy(self._stream, self._tmp, driver="COG", **_cog_options(self.dtype, resampling))
        self._stream.unlink()
        self._stream.with_name(self._stream.name + ".ovr").unlink(missing_ok=True)

    def _finish(self) -> None:
        """The category sidecar (or removal of a stale one), before the target appears."""
        aux = self.path.with_name(self.path.name + ".aux.xml")
        if self.categories:
            from geotool.io.files import write_text

            write_text(aux, category_xml(self.categories, self.colormap))
        else:
            aux.unlink(missing_ok=True)  # GDAL would read a previous run's sidecar as this file's metadata


@contextmanager
def open_writers(writers: Mapping[str, "RasterWriter"],
                 finishing: "Finishing | None" = None) -> Iterator[Mapping[str, "RasterWriter"]]:
    """Enter several :class:`RasterWriter` objects together: on success every output is renamed into
    place, on any error every temp file is removed (no half-written set of outputs).

    On success the outputs' COGs are made at the same time, one thread each (:meth:`RasterWriter.prepare`), before
    any is renamed: the class raster's copy overlaps the probabilities' instead of waiting for it.

    With a ``finishing`` (:class:`geotool.io.finishing.Finishing`), a block that ends without error leaves the
    outputs open in their temp files and hands them to it: the COGs are made and renamed when the finishing runs
    (possibly in another thread, while the next scene's model runs). An error inside the block still removes
    every temp file at once."""
    with ExitStack() as stack:
        opened = {name: stack.enter_context(writer) for name, writer in writers.items()}
        yield opened
        members = list(opened.values())
        if finishing is None:
            _prepare_all(members)
        else:
            finishing.hold_outputs(stack.pop_all(), lambda: _prepare_all(members), [w.path for w in members])


def _prepare_all(writers: Sequence["RasterWriter"]) -> None:
    """``prepare`` every writer, concurrently when there are several; the first failure is raised (the
    ExitStack then removes every temp file)."""
    if not writers:
        return
    from concurrent.futures import ThreadPoolExecutor

    with gdal_cache(COG_CACHE_BYTES):
        if len(writers) == 1:
            writers[0].prepare(False)
            return
        with ThreadPoolExecutor(len(writers), "geotool-cog") as pool:
            with signals_deferred():  # submit starts the threads: a signal inside would leave one running unjoined
                futures = [pool.submit(w.prepare, False) for w in writers]
            for future in futures:
                future.result()


def write_raster(
    path: str | os.PathLike,
    data: np.ndarray,
    grid: Grid,
    nodata: float | None = None,
    dtype: np.dtype | str | None = None,
    band_names: Sequence[str] | None = None,
    colormap: dict[int, tuple[int, int, int, int]] | None = None,
    tags: dict[str, str] | None = None,
    categories: Sequence[str] | None = None,
    cog: bool = True,
) -> Path:
    """Write a whole array ``(bands, rows, cols)`` or ``(rows, cols)`` as a GeoTIFF atomically (see
    :class:`RasterWriter`)."""
    if data.ndim == 2:
        data = data[None]
    if data.shape[1:] != grid.shape:
        raise ValueError(f"array shape {data.shape[1:]} does not match grid {grid.shape}")
    dtype = np.dtype(dtype) if dtype is not None else data.dtype
    with RasterWriter(path, grid, data.shape[0], dtype, nodata, band_names, colormap, tags, categories, cog) as out:
        out.write(data)
    return Path(path)


def iter_block_windows(grid: Grid, block: int = 1024) -> Iterator[Window]:
    """Non-overlapping windows of at most ``block`` x ``block`` pixels covering the grid, row-major."""
    for r in range(0, grid.height, block):
        for c in range(0, grid.width, block):
            yield Window(c, r, min(block, grid.width - c), min(block, grid.height - r))


def require_valid_pixels(valid: np.ndarray, what: str) -> None:
    """Raise EmptyDataError when no pixel is valid."""
    if not valid.any():
        raise EmptyDataError(f"{what} has no valid pixels (every pixel is nodata); check the file or --nodata")


def read_tags(path: str | os.PathLike) -> dict[str, str]:
    """The dataset-level GeoTIFF tags (metadata) of a raster."""
    with _open_dataset(Path(path)) as ds:
        return dict(ds.tags())


def read_aligned_band(path: str | os.PathLike, grid: Grid, what: str = "raster", dtype: str = "float32"):
    """Band 1 of ``path`` and its validity mask, which must lie on ``grid`` (same CRS, transform, shape).

    For single layers that go with a stack already read (a cost or strata raster next to the covariates).

    Raises:
        RasterMismatchError: ``path`` is on another grid (the message lists what differs and how to fix it).
    """
    from geotool.errors import RasterMismatchError

    with RasterSource([path]) as src:
        if not src.grid.same_as(grid):
            diffs = "; ".join(grid.differences(src.grid))
            raise RasterMismatchError(
                f"{path} ({what}) is not on the covariates' grid ({diffs}); resample it onto them first "
                f"(e.g. gdalwarp with their -te/-tr/-t_srs)"
            )
        data, valid = src.read(dtype=dtype)
    return data[0], valid

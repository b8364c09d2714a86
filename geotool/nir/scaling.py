"""Radiometric scaling between stored pixel values and the unit range the networks see.

Kinds (per band, chosen per dataset and stored in the checkpoint):
- ``uint8``: value / 255 (8-bit imagery such as NAIP).
- ``reflectance10000``: value / 10000 (12/16-bit surface reflectance x 10000, e.g. Sentinel-2 L2A).
- ``float``: value as is (float reflectance 0..1).
- ``percentile``: (value - p_lo) / (p_hi - p_lo) with per-band percentiles of the training pixels.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from geotool.errors import BandError, ConfigError

KINDS = ("auto", "uint8", "reflectance10000", "float", "percentile")


@dataclass(frozen=True)
class Scaling:
    """Affine map ``unit = (value - offset) / scale`` per band, with the stored dtype to convert back to."""

    kind: str
    offset: tuple[float, ...]
    scale: tuple[float, ...]
    dtype: str

    def to_unit(self, values: np.ndarray) -> np.ndarray:
        """``(bands, ...)`` stored values -> float32 unit values."""
        off = np.asarray(self.offset, np.float32).reshape((-1,) + (1,) * (values.ndim - 1))
        sc = np.asarray(self.scale, np.float32).reshape((-1,) + (1,) * (values.ndim - 1))
        return (values.astype(np.float32) - off) / sc

    def from_unit(self, unit: np.ndarray) -> np.ndarray:
        """Unit values -> stored units (float64, not yet cast or clipped)."""
        off = np.asarray(self.offset, np.float64).reshape((-1,) + (1,) * (unit.ndim - 1))
        sc = np.asarray(self.scale, np.float64).reshape((-1,) + (1,) * (unit.ndim - 1))
        return unit.astype(np.float64) * sc + off

    def to_dtype(self, unit: np.ndarray, reserve: float | None = None) -> np.ndarray:
        """Unit values -> stored dtype, rounded and clipped to its range (avoiding the nodata ``reserve``)."""
        values = self.from_unit(unit)
        dtype = np.dtype(self.dtype)
        if dtype.kind in "iu":
            info = np.iinfo(dtype)
            lo, hi = float(info.min), float(info.max)
            if reserve is not None and reserve == lo:
                lo += 1
            elif reserve is not None and reserve == hi:
                hi -= 1
            values = np.clip(np.rint(values), lo, hi)
        return values.astype(dtype)

    def as_dict(self) -> dict:
        """JSON/ckpt-friendly form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Scaling":
        """Inverse of :meth:`as_dict`."""
        return cls(data["kind"], tuple(data["offset"]), tuple(data["scale"]), data["dtype"])


def auto_kind(dtype: str, sample: np.ndarray | None = None) -> str:
    """Pick a scaling kind from the dtype (uint8 -> uint8, other ints -> reflectance10000, floats -> float)."""
    dt = np.dtype(dtype)
    if dt == np.uint8:
        return "uint8"
    if dt.kind in "iu":
        return "reflectance10000"
    if sample is not None and sample.size and float(np.nanpercentile(sample, 99)) > 2.0:
        return "reflectance10000"  # float-typed reflectance x 10000
    return "float"


def fit_scaling(kind: str, values: np.ndarray, dtype: str, percentiles: tuple[float, float] = (1.0, 99.0)) -> Scaling:
    """Build a :class:`Scaling` for ``values`` ``(bands, n_valid_pixels)`` stored as ``dtype``.

    Raises:
        ConfigError: unknown kind, or ``uint8`` asked for data that is not 8-bit.
    """
    if kind not in KINDS:
        raise ConfigError(f"--scaling must be one of {', '.join(KINDS)}, not {kind!r}")
    if kind == "auto":
        kind = auto_kind(dtype, values)
    n = values.shape[0]
    if kind == "uint8":
        if values.size and float(values.max()) > 255:
            raise ConfigError(f"--scaling uint8 given but the data reaches {float(values.max()):g}; use reflectance10000 or percentile")
        return Scaling(kind, (0.0,) * n, (255.0,) * n, dtype)
    if kind == "reflectance10000":
        return Scaling(kind, (0.0,) * n, (10000.0,) * n, dtype)
    if kind == "float":
        return Scaling(kind, (0.0,) * n, (1.0,) * n, dtype)
    if values.shape[1] == 0:
        raise ConfigError("percentile scaling needs valid training pixels")
    lo = np.percentile(values, percentiles[0], axis=1)
    hi = np.percentile(values, percentiles[1], axis=1)
    scale = np.where(hi - lo > 0, hi - lo, 1.0)
    return Scaling(kind, tuple(float(v) for v in lo), tuple(float(v) for v in scale), dtype)


def check_matches(expected: Scaling, dtype: str, band_count: int, path: str) -> None:
    """Raise a clear error when an input raster does not fit the checkpoint's scaling/band count."""
    if band_count != len(expected.offset):
        raise BandError(
            f"{path}: {band_count} band(s) selected but the model was trained on {len(expected.offset)} RGB band(s); "
            "pass --rgb-bands with that many bands"
        )
    if expected.kind == "uint8" and np.dtype(dtype) != np.uint8:
        raise ConfigError(
            f"{path} is {dtype} but the model was trained on uint8 imagery (scaling uint8); "
            "give 8-bit RGB or retrain with a matching --scaling"
        )
    if expected.kind in ("reflectance10000", "float") and np.dtype(dtype) == np.uint8:
        raise ConfigError(
            f"{path} is uint8 but the model was trained on {expected.kind} data; give the same kind of imagery"
        )

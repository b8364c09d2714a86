"""The GeotoolError family: problems with the user's input that the CLI reports in one line.

Every message names the offending file (or option) and says how to fix it. The CLI turns any
``GeotoolError`` into one line on stderr and exit code 2; anything else is a bug and exits 1.
"""

from __future__ import annotations


class GeotoolError(Exception):
    """Base class: a problem with the user's input or settings, not a bug in geotool."""

    exit_code = 2


class InputFileError(GeotoolError):
    """A file is missing, unreadable, or not of the expected kind (raster, vector, checkpoint)."""


class RasterMismatchError(GeotoolError):
    """Rasters that must share a grid (CRS, transform, shape) do not."""


class CRSError(GeotoolError):
    """A dataset has no CRS, or CRSs cannot be reconciled."""


class BandError(GeotoolError):
    """Wrong band count, band index out of range, or unknown band description."""


class NoOverlapError(GeotoolError):
    """Vectors or rasters that must overlap do not (after reprojection)."""


class EmptyDataError(GeotoolError):
    """No valid pixels, no labelled objects, or an empty mask where data is required."""


class ConfigError(GeotoolError):
    """An invalid option value or configuration file."""


class InfeasibleError(GeotoolError):
    """The request cannot be satisfied under the given constraints (e.g. too few feasible points)."""


class CheckpointError(GeotoolError):
    """A model checkpoint is missing, corrupted, or incompatible with the input."""


class OutputError(GeotoolError):
    """An output path cannot be written (unsupported extension, folder not writable)."""


class DeviceError(GeotoolError):
    """A compute device that was asked for is not on this machine (e.g. ``--device cuda`` without a GPU)."""

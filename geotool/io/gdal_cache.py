"""GDAL's block cache, shared by threads: the engine of one scene and the COG finishing of the previous one.

GDAL has one block cache per process. ``rasterio.Env(GDAL_CACHEMAX=...)`` sets it on entry and puts back what it
found on exit, which is right for one thread at a time but not for two overlapping ones: the one that exits last
puts back the *other's* size, and the process keeps it (measured: the engine's 50 MiB stayed after both ended).
:func:`gdal_cache` instead counts what every thread holding it asked for and sets the cache to the sum, and
restores the process's own size when the last one ends.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator

_lock = threading.Lock()
_held: list[int] = []  # bytes asked for by every block running now
_before: list = []  # the process's own setting, saved by the first block (a list: "unset" may be None)


@contextmanager
def gdal_cache(nbytes: int) -> Iterator[None]:
    """Hold GDAL's block cache at ``nbytes`` (bytes) more while the block runs, from any thread.

    The cache is the sum of what every block running now holds; when the last ends, the setting found before
    the first began is restored.
    """
    nbytes = int(nbytes)
    with _lock:
        if not _held:
            _before[:] = [_get()]
        _held.append(nbytes)
        _set(sum(_held))
    try:
        yield
    finally:
        with _lock:
            _held.remove(nbytes)
            _set(sum(_held) if _held else _before[0])


def _get():
    """The process's setting; when GDAL reports none, the size in force (so restoring it restores that size)."""
    from rasterio.env import get_gdal_config

    from geotool.io.gdal_settings import gdal_cache_max

    value = get_gdal_config("GDAL_CACHEMAX")
    return value if value is not None else gdal_cache_max()


def _set(value) -> None:
    from rasterio.env import set_gdal_config

    set_gdal_config("GDAL_CACHEMAX", value)

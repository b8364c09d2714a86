"""What GDAL itself is running with (not what the config options say): for tests and bench headers."""

from __future__ import annotations

import ctypes
import functools
import os


@functools.lru_cache(maxsize=1)
def _libgdal():
    """The libgdal that rasterio is linked against (found among the process's mapped libraries), or None."""
    import rasterio  # loads libgdal into the process

    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "/libgdal" in line}
    except OSError:
        paths = set()
    paths = sorted(p for p in paths if os.path.basename(p).startswith("libgdal"))
    # pyogrio's wheel brings its own libgdal (another version, with its own cache): rasterio's is the one in
    # rasterio.libs (a wheel), else one that no other package vendors (a system GDAL)
    wheel = os.path.join(os.path.dirname(os.path.dirname(rasterio.__file__)), "rasterio.libs")
    ours = [p for p in paths if os.path.dirname(p) == wheel] or [p for p in paths if not os.path.dirname(p).endswith(".libs")]
    for path in ours or paths:
        lib = ctypes.CDLL(path)
        lib.GDALGetCacheMax64.restype = ctypes.c_int64
        return lib
    return None


def gdal_cache_max() -> int | None:
    """GDAL's block cache limit in force now, in bytes (``GDALGetCacheMax64``); None where libgdal cannot be found."""
    lib = _libgdal()
    return int(lib.GDALGetCacheMax64()) if lib is not None else None


def compression_threads() -> int:
    """Threads GDAL may compress (and decompress) GeoTIFF blocks on: ``GDAL_NUM_THREADS`` when set to a
    number, else the CPUs this process may run on (its affinity mask, which SLURM and taskset narrow; the
    machine's CPU count would oversubscribe a shared node)."""
    value = os.environ.get("GDAL_NUM_THREADS", "")
    if value.isdigit() and int(value) > 0:
        return int(value)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def gdal_conditions() -> str:
    """One line for bench headers: GDAL version, block cache limit (MiB) and GDAL_NUM_THREADS."""
    import rasterio
    from rasterio.env import getenv, hasenv

    cache = gdal_cache_max()
    threads = getenv().get("GDAL_NUM_THREADS") if hasenv() else os.environ.get("GDAL_NUM_THREADS")
    cache_text = f"{cache / 2**20:.0f} MiB" if cache is not None else "unknown"
    return (f"GDAL {rasterio.__gdal_version__}, block cache {cache_text}, GDAL_NUM_THREADS {threads or 'unset'}, "
            f"GeoTIFF compression threads {compression_threads()}")

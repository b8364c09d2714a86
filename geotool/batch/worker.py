"""What a Dask worker process sets up before its first scene."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

# glibc mallopt parameters
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD_BYTES = 32 * 2**20
TRIM_THRESHOLD_BYTES = 128 * 2**20


@functools.lru_cache(maxsize=1)
def tune_malloc() -> bool:
    """Undo Dask's ``MALLOC_TRIM_THRESHOLD_=65536`` for this worker: setting it switches off glibc's adaptive
    mmap threshold, so every large array (a batch of windows, a layer's activations) is mmapped and returned
    to the system when freed, and the next forward pass faults its pages in again: the model ran at about half
    speed. Large thresholds keep freed memory for reuse. Returns False where there is no glibc."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES))


def prepare_worker() -> None:
    """Quiet (the client draws the scene bar) and the allocator tuned, once per process."""
    from geotool.run_state import STATE

    STATE.quiet = True
    tune_malloc()

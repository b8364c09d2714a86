"""Atomic outputs: write into a temp file beside the target, rename over it only on success.

A crash, a ``GeotoolError`` or Ctrl-C never leaves a half-written output under the final name.
"""

from __future__ import annotations

import glob
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from geotool.errors import OutputError


def prepare_output_dir(path: Path) -> None:
    """Create ``path``'s parent folder; a clear error if it cannot be created."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create the folder for {path}: {exc.strerror}; choose a writable --output") from None


def temp_files_of(path: str | os.PathLike) -> list[Path]:
    """Temp files :func:`atomic_path` / :func:`atomic_file_group` make for ``path`` (a killed run can leave them)."""
    path = Path(path)
    if not path.parent.is_dir():
        return []
    return sorted(path.parent.glob(f".{glob.escape(path.stem)}.*.tmp*"))


def remove_stale_temp_files(paths) -> int:
    """Delete the temp files an interrupted (killed) run left for ``paths``; call only for outputs no
    other process is writing now (a batch does it for the scene it is about to write)."""
    removed = 0
    for tmp in (t for p in paths for t in temp_files_of(p)):
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        removed += 1
    return removed


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp path in ``path``'s folder with the same suffix; rename it to ``path`` on success.

    Example:
        with atomic_path("out/mask.tif") as tmp:
            write_something(tmp)
    """
    path = Path(path)
    prepare_output_dir(path)
    tmp = None
    try:
        with _signals_deferred():  # a Ctrl-C or SIGTERM between creating and tracking the name would orphan it
            fd, tmp_name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
            os.close(fd)
            tmp = Path(tmp_name)
            tmp.unlink()  # writers (GDAL) want to create the file themselves
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp is not None:
            if tmp.exists():
                tmp.unlink()
            for sidecar in tmp.parent.glob(glob.escape(tmp.name) + ".*"):  # e.g. .aux.xml written by GDAL
                sidecar.unlink(missing_ok=True)


@contextmanager
def _signals_deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM until the block ends (main thread on POSIX; elsewhere a no-op)."""
    import signal
    import threading

    if not hasattr(signal, "pthread_sigmask") or threading.current_thread() is not threading.main_thread():
        yield
        return
    held = {signal.SIGINT, signal.SIGTERM}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


@contextmanager
def atomic_file_group(path: str | os.PathLike) -> Iterator[Path]:
    """Atomic output for multi-file formats (shapefile): yields a temp path inside a temp folder.

    On success every file written next to the temp path (``.shp``, ``.shx``, ``.dbf``, ``.prj``, ``.cpg``)
    is moved to ``path``'s folder under ``path``'s stem.
    """
    path = Path(path)
    prepare_output_dir(path)
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{path.stem}.", suffix=".tmp", dir=path.parent))
    try:
        tmp = tmp_dir / path.name
        yield tmp
        for part in sorted(tmp_dir.iterdir()):
            os.replace(part, path.parent / (path.stem + part.name[len(path.stem):]))
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)

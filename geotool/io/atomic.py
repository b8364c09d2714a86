"""Atomic outputs: write into a temp file beside the target, rename over it only on success.

A crash, a ``GeotoolError`` or Ctrl-C never leaves a half-written output under the final name. A folder on a
read-only or full file system is the user's environment, not a bug: the write fails as one ``OutputError``.
"""

from __future__ import annotations

import errno
import glob
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from geotool.errors import GeotoolError, OutputError


# errno values that say "this place cannot take files", whatever geotool writes there
UNWRITABLE_ERRNOS = {errno.EROFS: "the file system is read-only", errno.ENOSPC: "no space left on the device",
                     errno.EDQUOT: "the disk quota is exhausted", errno.EACCES: "no permission to write there",
                     errno.EPERM: "no permission to write there"}
# the same conditions as the messages of writers that do not raise OSError (GDAL, torch.save, zlib streams)
_UNWRITABLE_TEXTS = {"read-only file system": errno.EROFS, "no space left": errno.ENOSPC, "free disk space": errno.ENOSPC,
                     "disk quota": errno.EDQUOT, "file write failed": errno.ENOSPC}
FULL_BELOW_BYTES = 256 * 1024  # after a failed write, less free space than this means the disk filled up


def unwritable_reason(folder: str | os.PathLike | None = None, exc: BaseException | None = None) -> str | None:
    """Why files cannot be written into ``folder`` (or why ``exc`` failed): read-only, full, quota or
    permission, as a phrase; None when neither the error nor the file system says so (then it is not an
    environment problem)."""
    seen, depth = exc, 0
    while seen is not None and depth < 16:
        depth += 1
        code = getattr(seen, "errno", None)
        if code in UNWRITABLE_ERRNOS and _within(getattr(seen, "filename", None), folder):
            return UNWRITABLE_ERRNOS[code]
        text = str(seen).lower()
        for phrase, code in _UNWRITABLE_TEXTS.items():
            if phrase in text:
                return UNWRITABLE_ERRNOS[code]
        seen = seen.__cause__ or seen.__context__
    if folder is None:
        return None
    try:
        stat = os.statvfs(folder)
    except (OSError, AttributeError):
        return None
    if stat.f_flag & os.ST_RDONLY:
        return UNWRITABLE_ERRNOS[errno.EROFS]
    if exc is not None and stat.f_bavail * stat.f_frsize < FULL_BELOW_BYTES:
        return UNWRITABLE_ERRNOS[errno.ENOSPC]
    return None


def _within(filename, folder) -> bool:
    """True when an error's file is in ``folder`` (or either is unknown): a permission error on an input
    read while an output is open is not the output folder's fault."""
    if filename is None or folder is None:
        return True
    try:
        return Path(os.path.abspath(filename)).parent == Path(os.path.abspath(folder))
    except (TypeError, ValueError):
        return True


def _unwritable_error(path: Path, reason: str) -> OutputError:
    return OutputError(f"cannot write {path}: {reason}; free some space or choose another --output on a writable disk")


def prepare_output_dir(path: Path) -> None:
    """Create ``path``'s parent folder; a clear error if it cannot be created."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        reason = UNWRITABLE_ERRNOS.get(exc.errno, exc.strerror)
        raise OutputError(f"cannot create the folder for {path}: {reason}; choose a writable --output") from None


def check_room(folder: str | os.PathLike, need_bytes: int, what: str) -> None:
    """Refuse before any work starts when ``folder`` (or, if it does not exist yet, its nearest existing
    parent) is on a read-only file system or has less than ``need_bytes`` free: for outputs written by
    libraries that do not write atomically (a training run's checkpoints and logs)."""
    here = Path(os.path.abspath(folder))
    while not here.exists() and here != here.parent:
        here = here.parent
    try:
        stat = os.statvfs(here)
    except (OSError, AttributeError):
        return
    if stat.f_flag & os.ST_RDONLY:
        raise OutputError(f"cannot write {folder}: {UNWRITABLE_ERRNOS[errno.EROFS]}; choose another --output")
    free = stat.f_bavail * stat.f_frsize
    if free < need_bytes:
        raise OutputError(f"cannot write {folder}: {what} needs about {_mib(need_bytes)} and the disk has {_mib(free)} free; "
                          "free some space or choose another --output")


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


def _make_temp(path: Path, make):
    """``make()`` (mkstemp / mkdtemp in ``path``'s folder), a read-only or full folder as an OutputError."""
    try:
        return make()
    except OSError as exc:
        raise _unwritable_error(path, unwritable_reason(path.parent, exc) or exc.strerror) from None


@contextmanager
def _unwritable_as_output_error(path: Path) -> Iterator[None]:
    """A writer that fails because the folder is read-only or the disk filled up fails as an OutputError."""
    try:
        yield
    except GeotoolError:
        raise
    except Exception as exc:
        reason = unwritable_reason(path.parent, exc)
        if reason is None:
            raise
        raise _unwritable_error(path, reason) from exc


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
        with signals_deferred():  # a Ctrl-C or SIGTERM between creating and tracking the name would orphan it
            fd, tmp_name = _make_temp(path, lambda: tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}",
                                                                      dir=path.parent))
            os.close(fd)
            tmp = Path(tmp_name)
            tmp.unlink()  # writers (GDAL) want to create the file themselves
        with _unwritable_as_output_error(path):
            yield tmp
            os.replace(tmp, path)
    finally:
        if tmp is not None:
            if tmp.exists():
                tmp.unlink()
            for sidecar in tmp.parent.glob(glob.escape(tmp.name) + ".*"):  # e.g. .aux.xml written by GDAL
                sidecar.unlink(missing_ok=True)


@contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM until the block ends (main thread on POSIX; elsewhere a no-op).

    For steps that an exception raised by a signal handler must not cut in half: creating and tracking a temp
    name, starting a thread (an interrupted ``Thread.start`` leaves a thread that cannot be joined)."""
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
    tmp_dir = Path(_make_temp(path, lambda: tempfile.mkdtemp(prefix=f".{path.stem}.", suffix=".tmp", dir=path.parent)))
    try:
        tmp = tmp_dir / path.name
        with _unwritable_as_output_error(path):
            yield tmp
            for part in sorted(tmp_dir.iterdir()):
                os.replace(part, path.parent / (path.stem + part.name[len(path.stem):]))
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)

"""Plain files: input existence checks, glob expansion, hashes, YAML/JSON/CSV read and atomic write."""

from __future__ import annotations

import glob
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Iterable, Sequence

from geotool.errors import ConfigError, InputFileError
from geotool.io.atomic import atomic_path

RASTER_SUFFIXES = (".tif", ".tiff", ".vrt", ".img", ".jp2")


def require_file(path: str | os.PathLike, what: str = "input file") -> Path:
    """Return ``path`` as a Path if it is an existing file, else raise a clear InputFileError."""
    path = Path(path)
    if not path.exists():
        raise InputFileError(f"{path}: no such {what}; check the path")
    if path.is_dir():
        raise InputFileError(f"{path} is a folder, not a {what}")
    return path


def require_checkpoint_file(path: str | os.PathLike) -> Path:
    """``path`` if it is a file, else the loader's own CheckpointError, without importing torch (an inference
    command checks its paths before the seconds torch takes to load)."""
    from geotool.errors import CheckpointError

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; give the model.ckpt written by training")
    return path


def expand_inputs(items: Iterable[str | os.PathLike], suffixes: Sequence[str] = RASTER_SUFFIXES, what: str = "raster") -> list[Path]:
    """Expand paths, globs and folders into a sorted-per-item list of files.

    A folder contributes its files with one of ``suffixes``; a glob must match at least one file; a plain
    path must exist. Duplicates are dropped, order is kept.
    """
    out: list[Path] = []
    for item in items:
        text = str(item)
        if any(ch in text for ch in "*?[") and not Path(text).exists():
            matches = sorted(Path(m) for m in glob.glob(text, recursive=True))
            if not matches:
                raise InputFileError(f"{text}: the pattern matches no {what} file; check the path")
            out.extend(matches)
        elif Path(text).is_dir():
            matches = sorted(p for p in Path(text).iterdir() if p.suffix.lower() in suffixes)
            if not matches:
                raise InputFileError(f"{text}: the folder holds no {what} file ({', '.join(suffixes)})")
            out.extend(matches)
        else:
            out.append(require_file(text, what))
    seen: set[Path] = set()
    unique = []
    for p in out:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(p)
    return unique


def sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def read_yaml(path: str | os.PathLike) -> dict[str, Any]:
    """Read a YAML mapping; a clear ConfigError when it is not one."""
    import yaml

    path = require_file(path, "config file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}".splitlines()[0]) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a YAML mapping of option: value, not a {type(data).__name__}")
    return data


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "item"):
        return obj.item()
    if hasattr(obj, "model_dump"):
        return obj.model_dump(mode="json")
    return str(obj)


def write_json(path: str | os.PathLike, data: Any) -> Path:
    """Write ``data`` as indented JSON atomically (numpy values and Paths are converted)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, default=_json_default) + "\n", encoding="utf-8")
    return path


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file; a clear InputFileError when it is not JSON."""
    path = require_file(path, "JSON file")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputFileError(f"{path} is not valid JSON ({exc}); give the file geotool wrote") from None


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write text atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def read_table(path: str | os.PathLike):
    """Read a CSV table into a pandas DataFrame (UTF-8 with or without a byte-order mark)."""
    import pandas as pd

    path = require_file(path, "CSV table")
    try:
        return pd.read_csv(path, encoding="utf-8-sig")
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InputFileError(f"{path} is not a readable CSV table ({exc}); give comma-separated text with a header row") from None


def write_table(path: str | os.PathLike, frame) -> Path:
    """Write a pandas DataFrame as CSV atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)
    return path


def provenance(inputs: Iterable[str | os.PathLike]) -> dict[str, str]:
    """Map each existing input file to its SHA-256 (the JSON sidecars record these)."""
    return {str(p): sha256(p) for p in inputs if Path(p).is_file()}

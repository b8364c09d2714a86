"""Where a batch writes and what it pairs: the output folder, and each scene's reference in a folder."""

from __future__ import annotations

from pathlib import Path

from geotool.errors import ConfigError, InputFileError, OutputError


def require_output_folder(path: str | Path, several: str | None = None) -> Path:
    """``--output`` as a folder: refused at once when it is an existing file, or (``several`` names the inputs)
    when it looks like a file name; created when first written."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise OutputError(f"--output {out} is a file; give a folder for the outputs")
    if several and out.suffix:
        raise ConfigError(f"--output {out}: with several {several} give a folder (each gets <name>_metrics.json)")
    return out


def require_reference(reference: str | Path, what: str) -> None:
    """A reference file must exist; a folder of references is paired scene by scene (:func:`reference_for`)."""
    from geotool.io.files import require_file

    if not Path(reference).is_dir():
        require_file(reference, what)


def reference_for(scene: str, reference: str, suffixes: tuple[str, ...] = ()) -> str:
    """The reference of ``scene``: ``reference`` itself, or in a reference folder the raster named like the scene,
    with or without one of the ``suffixes`` its outputs carry (``x_classes.tif`` -> ``x.tif`` or ``x_classes.tif``)."""
    from geotool.io.files import RASTER_SUFFIXES

    folder = Path(reference)
    if not folder.is_dir():
        return reference
    stem = Path(scene).stem
    bare = next((stem.removesuffix(s) for s in suffixes if stem.endswith(s)), stem)
    names = list(dict.fromkeys([bare, stem]))
    for name in names:
        for path in sorted(folder.glob(f"{name}.*")):
            if path.suffix.lower() in RASTER_SUFFIXES:
                return str(path)
    raise InputFileError(f"{scene}: no reference raster named {' or '.join(names)} in {folder}; "
                         "name each reference after its scene")

"""Process-wide run flags (``--debug``, ``--quiet``, ``-v``, ``--log-file``): set once by the CLI's top-level
callback, read by the CLI and by :mod:`geotool.progress`. A notebook caller may set them too."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class RunState:
    """Global flags of one geotool run."""

    debug: bool = False
    quiet: bool = False
    verbose: int = 0
    log_file: Path | None = None


STATE = RunState()

"""Model checkpoints: torch-pickled dicts read and written atomically, with clean errors."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from geotool.errors import CheckpointError
from geotool.io.atomic import atomic_path


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> Path:
    """Write ``payload`` (tensors, numbers, strings, dicts) with ``torch.save`` atomically."""
    import torch

    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def load_checkpoint(path: str | os.PathLike, kind: str | None = None) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (or a Lightning ``.ckpt``).

    Args:
        path: the file.
        kind: when given, the payload's ``"format"`` entry must equal it.

    Raises:
        CheckpointError: missing, truncated/corrupted, or of another kind.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; give the model.ckpt written by training")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a bad file
        raise CheckpointError(
            f"checkpoint {path} is corrupted or not a torch checkpoint ({type(exc).__name__}); retrain or re-copy it"
        ) from None
    if not isinstance(payload, dict):
        raise CheckpointError(f"checkpoint {path} does not hold a dict; it was not written by geotool")
    if kind is not None and payload.get("format") != kind:
        raise CheckpointError(
            f"checkpoint {path} is not a {kind} checkpoint (format {payload.get('format')!r}); "
            "give the model.ckpt from the matching train command"
        )
    return payload

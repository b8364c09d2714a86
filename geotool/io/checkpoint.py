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


def load_checkpoint(path: str | os.PathLike, kind: str | None = None, max_version: int | None = None) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (or a Lightning ``.ckpt``).

    Args:
        path: the file.
        kind: when given, the payload's ``"format"`` entry must equal it.
        max_version: when given, the newest format ``"version"`` this geotool reads; a newer one is refused.

    Raises:
        CheckpointError: missing, truncated/corrupted, of another kind, or of a newer format version.
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
    version = payload.get("version", 1)
    if max_version is not None and (not isinstance(version, int) or version > max_version):
        raise CheckpointError(
            f"checkpoint {path} has format version {version!r}, this geotool reads up to {max_version}; upgrade geotool"
        )
    return payload


def load_state_dict(path: str | os.PathLike, what: str) -> dict[str, Any]:
    """Read a bare tensor state dict (weights only, no pickled code), e.g. local encoder weights.

    A ``{"state_dict": ...}`` wrapper (Lightning, many training scripts) is unwrapped. ``what`` names the
    option in error messages (``--encoder-weights``).
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{what} {path} does not exist; give a local state-dict file or omit it")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a bad file
        raise CheckpointError(f"{what} {path} is not a readable torch state dict ({type(exc).__name__})") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise CheckpointError(f"{what} {path} does not hold a state dict (a mapping of parameter names to tensors)")
    return state

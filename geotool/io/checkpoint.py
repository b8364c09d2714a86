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
    path = Path(path)
    payload = _torch_load(path, weights_only=False, missing="give the model.ckpt written by training",
                          unreadable="is corrupted or not a torch checkpoint", fix="; retrain or re-copy it",
                          what="checkpoint")
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
    path = Path(path)
    state = _torch_load(path, weights_only=True, missing="give a local state-dict file or omit it",
                        unreadable="is not a readable torch state dict", fix="", what=what)
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise CheckpointError(f"{what} {path} does not hold a state dict (a mapping of parameter names to tensors)")
    return state


def load_model_checkpoint(path: str | os.PathLike, kind: str, max_version: int, build, required: tuple[str, ...] = ()):
    """Read a task's ``model.ckpt`` and rebuild its network: ``build(payload)`` returns the bare network, whose
    weights come from ``payload["state_dict"]``; ``required`` keys must be present.

    Returns:
        ``(network in eval mode on the CPU, payload)``.

    Raises:
        CheckpointError: see :func:`load_checkpoint`, or a payload that is incomplete or does not fit its network.
    """
    from geotool.errors import ConfigError

    payload = load_checkpoint(path, kind, max_version=max_version)
    missing = [key for key in ("state_dict", *required) if key not in payload]
    if missing:
        raise CheckpointError(f"checkpoint {path} is incomplete (no {missing[0]!r}); retrain")
    try:
        net = build(payload)
        net.load_state_dict(payload["state_dict"])
    except (KeyError, RuntimeError, ValueError, TypeError, ConfigError) as exc:
        raise CheckpointError(f"checkpoint {path} is incomplete or does not match its architecture ({type(exc).__name__}); retrain") from None
    net.eval()
    return net, payload


def _torch_load(path: Path, weights_only: bool, missing: str, unreadable: str, fix: str, what: str):
    """``torch.load`` onto the CPU with the two ways a file can be wrong said as a CheckpointError."""
    import torch

    if not path.is_file():
        raise CheckpointError(f"{what} {path} does not exist; {missing}")
    try:
        return torch.load(path, map_location="cpu", weights_only=weights_only)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a bad file
        raise CheckpointError(f"{what} {path} {unreadable} ({type(exc).__name__}){fix}") from None

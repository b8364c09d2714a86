"""The ``model.ckpt`` format of ``train-nir``: what it holds, its version check and :func:`load_model`.

Inference (``generate-nir``, benches) imports this module, never the training code.

Payload keys (format ``geotool-nir``, version 1): ``arch`` (generator settings for
:func:`geotool.models.pix2pix.build_generator`), ``window`` (training window, pixels), ``rgb_bands``,
``nir_band``, ``rgb_scaling`` / ``nir_scaling`` (:class:`geotool.nir.scaling.Scaling` dicts),
``nir_nodata``, ``state_dict`` (the exported generator's weights), ``train`` (inputs, seed) and
``summary`` (validation figures).
"""

from __future__ import annotations

import os
from typing import Any

from geotool.errors import CheckpointError

FORMAT = "geotool-nir"
#: Newest payload layout this module writes and reads.
VERSION = 1


def load_model(path: str | os.PathLike):
    """Load ``model.ckpt`` -> (generator in eval mode, payload dict). Raises CheckpointError."""
    from geotool.io.checkpoint import load_checkpoint
    from geotool.models.pix2pix import build_generator

    payload: dict[str, Any] = load_checkpoint(path, FORMAT, max_version=VERSION)
    try:
        net = build_generator(payload["arch"])
        net.load_state_dict(payload["state_dict"])
        for key in ("window", "rgb_bands", "rgb_scaling", "nir_scaling"):
            payload[key]
    except (KeyError, RuntimeError, ValueError, TypeError) as exc:
        raise CheckpointError(f"checkpoint {path} is incomplete or does not match its architecture ({type(exc).__name__}); retrain") from None
    net.eval()
    return net, payload

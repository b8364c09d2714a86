"""The ``model.ckpt`` format of ``train-segmentation``: what it holds, its version check and :func:`load_model`.

Inference (``predict``, benches) imports this module, never the training code.

Payload keys (format ``geotool-segmentation``, version 1): ``arch`` (smp ``arch``, ``encoder``,
``in_channels``, ``classes``, ``options``), ``bands`` and ``band_count`` (input band selection), ``mean`` /
``std`` (per-band normalisation, raw units), ``class_names`` (background first), ``window`` and ``overlap``
(pixels), ``nodata_output`` (class raster nodata, 255), ``input_nodata``, ``task``, ``state_dict``,
``train`` (images, seed) and ``summary``.
"""

from __future__ import annotations

import os

FORMAT = "geotool-segmentation"
#: Newest payload layout this module writes and reads.
VERSION = 1


def load_model(path: str | os.PathLike):
    """``model.ckpt`` -> (network in eval mode, payload). Raises CheckpointError on a bad or foreign file."""
    from geotool.io.checkpoint import load_model_checkpoint
    from geotool.segmentation.model import build_model

    def build(payload):
        a = payload["arch"]
        return build_model(a["arch"], a["encoder"], a["in_channels"], a["classes"], options=a.get("options"))

    return load_model_checkpoint(path, FORMAT, VERSION, build, required=("mean", "std", "class_names", "window", "bands"))

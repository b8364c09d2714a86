"""The ``model.ckpt`` format of ``train-nir``: what it holds, its version check and :func:`load_model`.

Inference (``generate-nir``, benches) imports this module, never the training code.

Payload keys (format ``geotool-nir``, version 1): ``arch`` (generator settings for
:func:`geotool.models.pix2pix.build_generator`), ``window`` (training window, pixels), ``rgb_bands``,
``nir_band``, ``rgb_scaling`` / ``nir_scaling`` (:class:`geotool.nir.scaling.Scaling` dicts),
``nir_nodata``, ``state_dict`` (the exported generator's weights), ``train`` (inputs, validation scenes, seed,
harmonisation, jitter) and ``summary`` (validation figures). Added without a version change (older checkpoints
lack them and mean: no harmonisation, no domain report): ``scaling_kind`` (the requested kind; ``percentile``
is resolved again on each input), ``harmonise`` (:class:`geotool.nir.harmonise.Harmoniser` dict),
``rgb_domain`` / ``input_domain`` (:class:`geotool.nir.domain.TrainingDomain` dicts of the training RGB before
and after harmonisation).
"""

from __future__ import annotations

import os

FORMAT = "geotool-nir"
#: Newest payload layout this module writes and reads.
VERSION = 1


def load_model(path: str | os.PathLike):
    """Load ``model.ckpt`` -> (generator in eval mode, payload dict). Raises CheckpointError."""
    from geotool.io.checkpoint import load_model_checkpoint
    from geotool.models.pix2pix import build_generator

    return load_model_checkpoint(path, FORMAT, VERSION, lambda p: build_generator(p["arch"]),
                                 required=("window", "rgb_bands", "rgb_scaling", "nir_scaling"))

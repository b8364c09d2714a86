"""Radiometric harmonisation: map each scene's unit-scale RGB onto the training distribution, band by band.

Kinds (``train-nir --harmonise``, stored in the checkpoint, applied by ``generate-nir``):
- ``none``: the input as scaled.
- ``moments``: ``(x - mean_scene) / std_scene * std_ref + mean_ref`` per band.
- ``histogram``: quantile matching, ``x`` -> the reference quantile at ``x``'s quantile in its own scene
  (``QUANTILES`` levels, linear between them, clamped at the ends).

The reference is the pooled unit-scale RGB of the training scenes. A scene's statistics always come from
the lattice of windows of :func:`geotool.io.sampling.sample_values` (never a whole-scene read), for
training scenes and inputs alike, so a training scene given to ``generate-nir`` gets exactly the
transform training applied to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

Kind = Literal["none", "moments", "histogram"]
KINDS = ("none", "moments", "histogram")
QUANTILES = 101  # levels 0, 1, ..., 100 %
MIN_STD = 1e-3  # unit scale: a flat band is shifted, not stretched by 1/0


def _stats(kind: str, unit: np.ndarray) -> np.ndarray:
    """``(3, n)`` unit values -> ``(3, 2)`` mean/std (moments) or ``(3, QUANTILES)`` quantiles (histogram)."""
    unit = np.asarray(unit, np.float64)
    if kind == "moments":
        return np.stack([unit.mean(axis=1), np.maximum(unit.std(axis=1), MIN_STD)], axis=1)
    q = np.quantile(unit, np.linspace(0, 1, QUANTILES), axis=1).T
    # 8-bit data repeat quantiles; np.interp needs increasing abscissae, so ties are spread by a hair
    return np.maximum.accumulate(q + np.arange(QUANTILES) * 1e-9, axis=1)


@dataclass(frozen=True)
class SceneTransform:
    """One scene's map onto the reference: ``kind``, its own statistics and the reference's."""

    kind: str
    source: np.ndarray
    reference: np.ndarray

    def apply(self, unit: np.ndarray) -> np.ndarray:
        """``(3, ...)`` or ``(B, 3, ...)`` unit RGB -> harmonised unit RGB (float32)."""
        if self.kind == "none":
            return unit
        axis = unit.ndim - 3 if unit.ndim >= 3 else 0  # the band axis: first, or second of a batch
        bands = np.moveaxis(np.asarray(unit, np.float32), axis, 0)
        if self.kind == "moments":
            shape = (3,) + (1,) * (bands.ndim - 1)
            (mu_s, sd_s), (mu_r, sd_r) = self.source.T, self.reference.T
            out = (bands - mu_s.reshape(shape)) * (sd_r / sd_s).reshape(shape) + mu_r.reshape(shape)
        else:
            out = np.stack([np.interp(b, s, r) for b, s, r in zip(bands, self.source, self.reference)])
        return np.moveaxis(out.astype(np.float32), 0, axis)

    def record(self) -> dict:
        """The sidecar's ``harmonise`` entry: the kind and the scene's statistics (unit scale)."""
        if self.kind == "none":
            return {"kind": "none"}
        if self.kind == "moments":
            return {"kind": "moments", "mean": self.source[:, 0].round(5).tolist(), "std": self.source[:, 1].round(5).tolist()}
        return {"kind": "histogram", "median": self.source[:, QUANTILES // 2].round(5).tolist(),
                "p01": self.source[:, 1].round(5).tolist(), "p99": self.source[:, -2].round(5).tolist()}


@dataclass(frozen=True)
class Harmoniser:
    """The training side: the kind and the reference statistics of the pooled training RGB."""

    kind: str
    reference: np.ndarray | None

    @classmethod
    def fit(cls, kind: str, samples: list[np.ndarray]) -> "Harmoniser":
        """Reference from every training scene's ``(3, n)`` unit-scale lattice sample, pooled (each scene
        weighs by its valid pixels in the sample)."""
        if kind == "none":
            return cls("none", None)
        return cls(kind, _stats(kind, np.concatenate(samples, axis=1)))

    def for_scene(self, unit_sample: np.ndarray) -> SceneTransform:
        """The transform of one scene from its ``(3, n)`` unit-scale lattice sample."""
        if self.kind == "none":
            return SceneTransform("none", np.zeros((3, 0)), np.zeros((3, 0)))
        return SceneTransform(self.kind, _stats(self.kind, unit_sample), self.reference)

    def as_dict(self) -> dict:
        return {"kind": self.kind, "reference": None if self.reference is None else self.reference.tolist()}

    @classmethod
    def from_dict(cls, data: dict | None) -> "Harmoniser":
        """Inverse of :meth:`as_dict`; a checkpoint without the key (older) means ``none``."""
        if not data or data["kind"] == "none":
            return cls("none", None)
        return cls(data["kind"], np.asarray(data["reference"], np.float64))

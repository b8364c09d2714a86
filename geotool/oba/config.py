"""The OBA config: one pydantic model shared by ``geotool oba-augment`` and the on-the-fly training hook."""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field, model_validator

from geotool.config import GeotoolConfig
from geotool.labels import CLASS_NODATA


class ShadowConfig(GeotoolConfig):
    """Cast shadows of pasted objects onto the background (off by default)."""

    enabled: bool = Field(False, description="Cast a shadow from every pasted object.")
    sun_azimuth: float = Field(135.0, ge=0, lt=360, description="Sun azimuth in degrees clockwise from north.")
    sun_elevation: float = Field(45.0, gt=0, le=90, description="Sun elevation above the horizon in degrees.")
    height_range: tuple[float, float] = Field(
        (3.0, 10.0), description="Object height range in metres (uniform draw) when no per-class range or attribute."
    )
    class_heights: dict[int, tuple[float, float]] = Field(
        default_factory=dict, description="Per-class height range in metres, e.g. {1: [3, 12]}."
    )
    height_attribute: Optional[str] = Field(
        None, description="Label attribute holding each object's height in metres (overrides the ranges)."
    )
    darkening: tuple[float, float] = Field(
        (0.5, 0.8), description="Shadow pixels are multiplied by a factor drawn from this range (0..1)."
    )

    @model_validator(mode="after")
    def _check(self) -> "ShadowConfig":
        lo, hi = self.darkening
        if not 0 <= lo <= hi <= 1:
            raise ValueError("shadows.darkening must be [low, high] with 0 <= low <= high <= 1")
        if not 0 <= self.height_range[0] <= self.height_range[1]:
            raise ValueError("shadows.height_range must be [low, high] metres with 0 <= low <= high")
        return self


class OBAConfig(GeotoolConfig):
    """Object-based augmentation settings (pixel units are pixels of the background/output grid)."""

    bands: Optional[list[int | str]] = Field(None, description="Bands to use (1-based or descriptions); default all non-alpha.")
    class_attribute: Optional[str] = Field(
        None, description="Label attribute holding the class (integers 1..254, or names mapped to 1.. in sorted order); none: every object is class 1."
    )
    paste_classes: Optional[list[int | str]] = Field(
        None, description="Classes to paste (ids or attribute values); none = every class. Other labels stay in the mask."
    )
    scene_size: int = Field(256, ge=16, description="Output scene size in pixels (square).")
    n_objects: tuple[int, int] = Field((3, 10), description="Objects pasted per scene: [min, max] (uniform).")
    min_gap: int = Field(2, ge=0, description="Minimum gap in pixels between a pasted object and any other object.")
    border_clip: bool = Field(True, description="Allow objects to be clipped at the scene border.")
    min_visible: float = Field(0.6, gt=0, le=1, description="Fraction of an object that must lie inside the scene.")
    class_limits: dict[int, int] = Field(default_factory=dict, description="Maximum pasted objects per class per scene.")
    class_balanced: bool = Field(True, description="Draw classes uniformly, then an object of that class (helps rare classes).")
    min_object_pixels: int = Field(6, ge=1, description="Objects smaller than this many pixels (at their own pixel size) are not banked.")
    rot90: bool = Field(True, description="Random multiples of 90 degree rotation.")
    flip: bool = Field(True, description="Random horizontal flip.")
    max_rotation: float = Field(0.0, ge=0, le=180, description="Free rotation angle drawn from [-max, max] degrees (0 = off).")
    scale_range: tuple[float, float] = Field((0.9, 1.1), description="Scale jitter factor range (after resampling to the output pixel size).")
    brightness: float = Field(0.1, ge=0, lt=1, description="Multiplicative brightness jitter: factor in [1-b, 1+b], inside the object only.")
    contrast: float = Field(0.1, ge=0, lt=1, description="Contrast jitter around the object's mean: factor in [1-c, 1+c], inside the object only.")
    match: Literal["none", "meanstd", "histogram"] = Field(
        "none", description="Match the object's per-band mean/std or histogram to the local background."
    )
    blend: Literal["hard", "gaussian"] = Field(
        "hard", description="Paste with a hard mask or a Gaussian-feathered alpha edge (hard measured better on buildings, BENCHMARKS.md)."
    )
    feather_sigma: float = Field(1.0, gt=0, description="Gaussian feather width in pixels.")
    ignore_ring: int = Field(0, ge=0, description="Width in pixels of an ignore ring (ignore_index) around pasted boundaries in the mask.")
    ignore_index: int = Field(CLASS_NODATA, ge=0, le=CLASS_NODATA, description="Mask value for nodata and ignore-ring pixels.")
    background_buffer: int = Field(8, ge=0, description="Mined background windows stay this many pixels away from every labelled object.")
    background_stride: Optional[int] = Field(None, ge=1, description="Stride in pixels of candidate background windows (default scene_size/2).")
    min_valid_fraction: float = Field(0.95, gt=0, le=1, description="A background window needs at least this fraction of valid (not nodata) pixels.")
    max_label_fraction: Optional[float] = Field(
        None, ge=0, lt=1, description="Mined windows may hold labelled pixels up to this fraction (kept in the mask and avoided); "
        "0 = strictly label-free; None = label-free when the scenes have such windows, else up to 5%, 15% or 30%, with a note."
    )
    mine_backgrounds: bool = Field(True, description="Mine label-free windows from the labelled scenes as backgrounds.")
    max_tries: int = Field(30, ge=1, description="Placement attempts per object before it is skipped.")
    probability: float = Field(0.6, ge=0, le=1, description="On-the-fly only: chance that a training window is augmented.")
    shadows: ShadowConfig = Field(default_factory=ShadowConfig, description="Shadow casting.")

    @model_validator(mode="after")
    def _check(self) -> "OBAConfig":
        lo, hi = self.n_objects
        if not 0 <= lo <= hi:
            raise ValueError("n_objects must be [min, max] with 0 <= min <= max")
        s0, s1 = self.scale_range
        if not 0 < s0 <= s1:
            raise ValueError("scale_range must be [low, high] with 0 < low <= high")
        if any(c < 1 or c > 254 for c in self.class_limits):
            raise ValueError("class_limits keys are class ids 1..254")
        return self


class OBAAugmentConfig(OBAConfig):
    """Settings of ``geotool oba-augment``: the composition settings (:class:`OBAConfig`, which on-the-fly OBA
    in training shares) plus the run's inputs, outputs and seed."""

    images: list[str] = Field(default_factory=list, description="Labelled scenes (GeoTIFF paths, globs or folders).")
    labels: Optional[str] = Field(None, description="Object polygons (any CRS) with a class attribute, or a class-mask GeoTIFF.")
    output: Optional[str] = Field(None, description="Output folder.")
    n: int = Field(8, ge=1, description="Number of scenes to compose.")
    backgrounds: list[str] = Field(default_factory=list, description="Extra label-free background GeoTIFFs (same bands).")
    seed: int = Field(0, description="Everything random derives from it: the same seed gives the same files.")
    contact_sheet: bool = Field(True, description="Write contact_sheet.png of the run.")

    def composition(self) -> OBAConfig:
        """The composition settings alone: what a scene's pixels depend on (with the seed and the inputs)."""
        return OBAConfig.model_validate(self.model_dump(include=set(OBAConfig.model_fields)))

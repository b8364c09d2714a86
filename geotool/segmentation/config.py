"""Settings of ``geotool train-segmentation`` (presets in ``geotool/configs/buildings.yaml``, ``forest.yaml``)."""

from __future__ import annotations

from typing import Any, Literal, Optional

from pydantic import Field, model_validator

from geotool.config import GeotoolConfig
from geotool.labels import CLASS_NODATA
from geotool.oba.config import OBAConfig
from geotool.training.trainer import TrainerOptions

LossName = Literal["dice", "ce", "bce", "focal", "lovasz", "jaccard", "tversky"]


class AugmentConfig(GeotoolConfig):
    """Albumentations applied to training windows."""

    flips: bool = Field(True, description="Random horizontal and vertical flips.")
    rot90: bool = Field(True, description="Random 90-degree rotations.")
    brightness_contrast: float = Field(0.1, ge=0, le=1, description="Max relative brightness/contrast change (0 = off).")
    scale_rotate: float = Field(0.0, ge=0, le=1, description="Probability of a random scale (+-10%) and rotation (+-15 deg).")


class SegmentationConfig(TrainerOptions):
    """Settings of ``geotool train-segmentation``."""

    images: list[str] = Field(default_factory=list, description="Image GeoTIFFs (paths or globs).")
    labels: list[str] = Field(default_factory=list, description="Vector labels (one file for all images) or one mask raster per image.")
    val_images: list[str] = Field(default_factory=list, description="Separate validation scenes (else a block split).")
    val_labels: list[str] = Field(default_factory=list, description="Labels of the validation scenes.")
    output: Optional[str] = Field(None, description="Run folder.")
    task: str = Field("custom", description="Preset name (buildings, forest) or custom.")
    bands: Optional[list[int | str]] = Field(None, description="Bands (1-based or descriptions); default all but alpha.")
    nodata: Optional[float] = Field(None, description="Override the images' nodata value.")
    class_attribute: Optional[str] = Field(None, description="Vector column with the class; none = every polygon is class 1.")
    class_map: dict[str, int] = Field(default_factory=dict, description="Attribute value -> class id (>0); unmapped features are skipped.")
    class_names: list[str] = Field(["background", "foreground"], description="Class names, index = class id (0 = background).")
    ignore_index: int = Field(CLASS_NODATA, ge=0, le=255, description="Label value ignored by the loss (nodata).")
    arch: str = Field("Unet", description="smp architecture: Unet, UnetPlusPlus, FPN, PSPNet, DeepLabV3, DeepLabV3Plus, Linknet, MAnet, PAN, UPerNet, Segformer, DPT.")
    encoder: str = Field("resnet18", description="smp encoder name.")
    encoder_weights: Optional[str] = Field(None, description="Local encoder state-dict file (none = random init, no hub).")
    model_options: dict[str, Any] = Field(default_factory=dict, description="Extra smp architecture arguments, e.g. "
                                          "{encoder_depth: 3, decoder_channels: [64, 32, 16]} for a lighter Unet.")
    loss: list[LossName] = Field(["ce", "dice"], min_length=1, description="Losses summed (smp.losses).")
    window: int = Field(256, description="Training and prediction window, pixels (multiple of 32).")
    batch_size: int = Field(8, ge=1, description="Windows per step.")
    lr: float = Field(1e-3, gt=0, description="AdamW learning rate.")
    val_fraction: float = Field(0.25, description="Share of blocks held out for validation (spatial split).")
    block: Optional[int] = Field(None, ge=1, description="Split block side, pixels (default 2 x window).")
    split_seed: Optional[int] = Field(None, description="Seed of the block split (default: seed); fix it to compare seeds on one split.")
    val_windows: int = Field(32, ge=1, description="Max validation windows per epoch.")
    positive_fraction: float = Field(0.0, ge=0, le=1, description="Share of training windows forced to contain foreground.")
    augment: AugmentConfig = Field(default_factory=AugmentConfig, description="Augmentation.")
    overlap: Optional[int] = Field(None, description="Prediction window overlap, pixels (stored in the checkpoint; default window / 4).")
    oba: Optional[OBAConfig] = Field(None, description="On-the-fly object-based augmentation of training windows "
                                     "(the oba-augment settings, e.g. the shipped ``oba`` preset); none = off.")
    workers: int = Field(0, ge=0, description="DataLoader worker processes preparing training windows (0 = in the main process).")
    cache_mb: float = Field(512, gt=0, description="Block cache of decoded image and label blocks, MB per process (main and each "
                            "worker); scenes are read window by window through it.")
    stats_windows: int = Field(256, gt=0, description="Random training windows the per-band normalisation statistics are "
                               "computed from (no scene is read whole).")
    seed: int = Field(0, description="Random seed.")

    @model_validator(mode="after")
    def _consistent(self) -> "SegmentationConfig":
        if self.window < 32 or self.window % 32:
            raise ValueError(f"--window must be a multiple of 32 pixels, not {self.window}")
        if self.overlap is not None and not 0 <= self.overlap < self.window:
            raise ValueError(f"overlap must be in [0, window), not {self.overlap}")
        if len(self.class_names) < 2:
            raise ValueError("--class-names needs at least two classes (background first)")
        if not 0 < self.val_fraction < 1 and not self.val_images:
            raise ValueError(f"--val-fraction must be in (0, 1), not {self.val_fraction}")
        if any(v <= 0 or v >= len(self.class_names) for v in self.class_map.values()):
            raise ValueError(f"--class-map ids must be in 1..{len(self.class_names) - 1} (0 is background)")
        return self

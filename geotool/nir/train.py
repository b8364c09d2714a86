"""``train-nir``: fit the RGB -> NIR conditional GAN on paired scenes and export ``model.ckpt``."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal, Optional


from pydantic import Field, model_validator

from geotool.errors import ConfigError
from geotool.nir import checkpoint
from geotool.training.schedule import LRSchedule
from geotool.training.trainer import TrainerOptions, check_training_options

log = logging.getLogger(__name__)


class TrainNIRConfig(TrainerOptions):
    """Settings of ``geotool train-nir`` (Lightning options shared with ``train-segmentation``; steps are
    generator steps)."""

    inputs: list[str] = Field(default_factory=list, description="Paired GeoTIFFs holding RGB and NIR bands: files, globs or "
                              "folders, each file one scene (scenes are drawn in proportion to their valid area).")
    nir_inputs: Optional[list[str]] = Field(None, description="Separate NIR rasters, one per input (in the inputs' order), on the same grid.")
    val_scenes: list[str] = Field(default_factory=list, description="Scenes held out whole for validation: file names, stems, "
                                  "globs or paths among the inputs; the other scenes then train on all their columns "
                                  "(without it, the east --val-fraction of every scene validates).")
    harmonise: Literal["none", "moments", "histogram"] = Field("none", description="Per-scene radiometric harmonisation of the "
                                                              "RGB onto the pooled training distribution (per-band mean/std, or quantile "
                                                              "matching), from a lattice sample of each scene; stored in model.ckpt and "
                                                              "applied by generate-nir.")
    color_jitter: float = Field(0.0, ge=0, le=2, description="Strength (0 = off, 1 = strong) of per-window, per-band gamma/contrast/brightness "
                                "changes of the RGB during training (seeded).")
    output: Optional[str] = Field(None, description="Run folder (checkpoints, metrics.csv, previews, model.ckpt).")
    rgb_bands: list[int | str] = Field([1, 2, 3], description="R,G,B band numbers (1-based) or descriptions.")
    nir_band: int | str = Field(4, description="NIR band number in the paired file (or in the NIR file).")
    scaling: Literal["auto", "uint8", "reflectance10000", "float", "percentile"] = Field(
        "auto", description="Radiometric scaling: uint8 /255, reflectance10000 /10000, float as is, percentile 1-99%.")
    window: int = Field(256, ge=8, description="Training window side, pixels (multiple of 2**depth).")
    batch_size: int = Field(4, ge=1, description="Windows per step.")
    val_fraction: float = Field(0.3, ge=0.05, le=0.9, description="East fraction of every scene kept for validation (spatial split).")
    val_windows: int = Field(16, ge=1, description="Validation windows per epoch.")
    generator: Literal["pix2pix", "smp"] = Field("pix2pix", description="pix2pix U-Net or an smp Unet.")
    ngf: int = Field(64, ge=1, description="pix2pix generator base filters.")
    depth: int = Field(8, ge=1, description="pix2pix U-Net down-sampling steps.")
    dropout: bool = Field(True, description="pix2pix decoder dropout.")
    norm: Literal["batch", "instance"] = Field("instance", description="pix2pix generator normalisation: instance (each window's own statistics; measured better on NAIP) or batch (running training statistics at inference).")
    encoder: str = Field("resnet18", description="smp encoder name.")
    encoder_weights: Optional[str] = Field(None, description="Local encoder state-dict file for smp (none = random init).")
    ndf: int = Field(64, ge=1, description="PatchGAN base filters.")
    d_layers: int = Field(3, ge=0, description="PatchGAN stride-2 layers (3 = 70 px patches).")
    gan_mode: Literal["vanilla", "lsgan"] = Field("lsgan", description="Adversarial loss: least squares (measured better on NAIP) or pix2pix's vanilla.")
    gan_weight: float = Field(1.0, ge=0, description="Adversarial loss weight; 0 trains the generator alone (with ssim_weight 0: the L1 baseline).")
    l1_weight: float = Field(100.0, ge=0, description="lambda for the L1 term.")
    ssim_weight: float = Field(50.0, ge=0, description="Weight of 1 - SSIM (7x7 window); 0 for pix2pix's L1-only content loss.")
    ndvi_weight: float = Field(0.0, ge=0, description="Weight of the NDVI-consistency L1 term.")
    lr: float = Field(2e-4, gt=0, description="Adam learning rate (beta1 0.5).")
    lr_schedule: LRSchedule = Field("linear-decay", description="constant, linear-decay (pix2pix: constant for the first half of the steps, then linearly to zero) or cosine.")
    ema: float = Field(0.995, ge=0, lt=1, description="Decay per step of an exponential moving average of the generator's weights, which is validated and exported instead of the live weights (0 = off).")
    export: Literal["best", "last"] = Field("best", description="Weights written to model.ckpt: the epoch with the lowest validation MAE, or the final step.")
    augment: bool = Field(True, description="Random flips/rot90 of input and target together.")
    seed: int = Field(0, description="Random seed.")

    @model_validator(mode="after")
    def _consistent(self) -> "TrainNIRConfig":
        from geotool.models.shape_rules import max_patch_layers, window_multiple

        if len(self.rgb_bands) != 3:
            raise ValueError(f"--rgb-bands takes three bands (R,G,B), not {self.rgb_bands}")
        if not self.nir_inputs and self.nir_band in self.rgb_bands:
            raise ValueError(f"--nir-band {self.nir_band} is also one of --rgb-bands {','.join(map(str, self.rgb_bands))}: "
                             "the model would learn to copy its input; give the NIR band of the files (4 for NAIP, 8 for "
                             "Sentinel-2)")
        if self.gan_weight > 0 and not 1 <= self.d_layers <= max_patch_layers(self.window):
            raise ValueError(f"--d-layers {self.d_layers} does not fit {self.window}-px windows; use 1 to "
                             f"{max_patch_layers(self.window)}")
        mult = window_multiple({"generator": self.generator, "depth": self.depth})
        if self.window % mult:
            raise ValueError(f"--window {self.window} must be a multiple of {mult} for this generator (depth {self.depth})")
        return self


def validate(cfg: TrainNIRConfig) -> None:
    """Before reading or writing anything: the inputs the command needs are named and the files it names exist
    (option values were validated by the config)."""
    if not cfg.inputs:
        raise ConfigError("train-nir needs at least one paired GeoTIFF")
    if cfg.output is None:
        raise ConfigError("train-nir needs --output RUN_DIR")
    check_training_options(cfg)


def run_train_nir(cfg: TrainNIRConfig, adapt_window: bool = False) -> dict:
    """Train and export. Returns a summary: validation MAE/SSIM of the exported weights, the best epoch's
    validation MAE, epochs, generator steps and the model path.

    ``adapt_window``: the window and depth are the preset's (not chosen by the user): scenes too small for
    them train on the largest half, quarter, ... window that fits, with the U-Net one level shallower per
    halving, and a note.
    """
    validate(cfg)
    from geotool.io.raster import check_nodata_fits
    from geotool.nir.data import (fit_scalings, lattice_sample, read_paired, scene_splits, to_scenes, training_domain,
                                  training_windows, validation_windows)
    from geotool.nir.harmonise import Harmoniser
    from geotool.nir.module import NIRGan
    from geotool.nir.plots import window_panel
    from geotool.training.fit import TrainingTask, fit_and_export

    inputs, nir_inputs = expand_scenes(cfg)
    held = match_val_scenes(inputs, cfg.val_scenes)
    raw = read_paired(inputs, cfg.rgb_bands, cfg.nir_band, nir_inputs)
    splits = scene_splits(raw, cfg.val_fraction, held)
    if adapt_window:
        cfg = _adapt_window(cfg, raw, splits)
    samples = [lattice_sample(path, cfg.rgb_bands) for path in inputs]
    rgb_scalings, nir_scaling = fit_scalings(raw, cfg.scaling, splits, samples)
    units = [sc.to_unit(sample) for sc, sample in zip(rgb_scalings, samples)]
    # the reference is the training scenes' colours; a validation scene is harmonised onto it like any input
    harmoniser = Harmoniser.fit(cfg.harmonise, [u for u, split in zip(units, splits) if split])
    scenes = to_scenes(raw, rgb_scalings, [harmoniser.for_scene(u) for u in units], nir_scaling, splits, cfg.window)
    rgb_domain, input_domain = training_domain(scenes, raw_unit=True), training_domain(scenes)
    val_ds = validation_windows(scenes, cfg.window, cfg.val_windows)
    nir_dtype, nir_nodata = raw[0][4][-1], raw[0][5][-1]
    out = Path(cfg.output)
    gan_steps = 2 if cfg.gan_weight > 0 else 1  # Lightning counts both optimisers' steps of a GAN step

    def preview(epoch, arrays):
        rgb, nir, fake, valid = arrays
        window_panel(rgb, nir[:, 0], fake[:, 0], valid[:, 0].astype(bool), out / "previews" / f"epoch_{epoch:03d}.png",
                     title=f"epoch {epoch}: validation windows (unit scale)")

    arch = dict(generator=cfg.generator, in_channels=3, ngf=cfg.ngf, depth=cfg.depth, dropout=cfg.dropout,
                norm=cfg.norm, encoder=cfg.encoder, ndf=cfg.ndf, d_layers=cfg.d_layers)
    loss = dict(gan_mode=cfg.gan_mode, gan_weight=cfg.gan_weight, l1_weight=cfg.l1_weight,
                ssim_weight=cfg.ssim_weight, ndvi_weight=cfg.ndvi_weight)

    def export(module, trainer, ckpt_cb, val_dl):
        nodata = check_nodata_fits(nir_nodata, nir_dtype)
        exported = module.score(val_dl)
        summary = {
            "export": cfg.export,
            "val_mae_unit": exported["mae"],  # of the exported weights
            "val_ssim": exported["ssim"],
            "best_val_mae_unit": float(ckpt_cb.best_model_score) if ckpt_cb.best_model_score is not None else None,
            "epochs": trainer.current_epoch,
            "steps": int(trainer.global_step) // gan_steps,  # generator steps
            "train_scenes": [p for p, split in zip(inputs, splits) if split],
            "val_scenes": sorted(held),
        }
        payload = {
            "format": checkpoint.FORMAT,
            "version": checkpoint.VERSION,
            "arch": arch,
            "window": cfg.window,
            "rgb_bands": list(cfg.rgb_bands),
            "nir_band": cfg.nir_band,
            "rgb_scaling": rgb_scalings[0].as_dict(),  # a percentile kind is resolved again on each input
            "scaling_kind": cfg.scaling,
            "harmonise": harmoniser.as_dict(),
            "rgb_domain": rgb_domain.as_dict(),  # generate-nir reports how far an input lies from it
            "input_domain": input_domain.as_dict(),  # the same after harmonisation: what the network saw
            "nir_scaling": nir_scaling.as_dict(),
            "nir_nodata": nodata,
            "state_dict": {k: v.detach().cpu() for k, v in module.exported_generator.state_dict().items()},
            "train": {"inputs": inputs, "val_scenes": sorted(held), "seed": cfg.seed, "gan_weight": cfg.gan_weight,
                      "harmonise": cfg.harmonise, "color_jitter": cfg.color_jitter},
        }
        return payload, summary

    task = TrainingTask(
        command="train-nir",
        build_module=lambda: NIRGan(arch, loss, lr=cfg.lr, encoder_weights=cfg.encoder_weights, lr_schedule=cfg.lr_schedule,
                                    total_steps=cfg.planned_steps, ema=cfg.ema),
        train_ds=training_windows(scenes, cfg.window, cfg.steps_per_epoch * cfg.batch_size, cfg.seed, cfg.augment,
                                  jitter=cfg.color_jitter),
        val_ds=val_ds, batch_size=cfg.batch_size, val_batch_size=min(8, len(val_ds)), monitor="val_mae", mode="min",
        preview=preview, export=export, inputs=inputs + list(nir_inputs or []),
        optimizers_per_step=gan_steps, restore_best=cfg.export == "best")
    return fit_and_export(cfg, out, task, cfg.seed)


def _adapt_window(cfg: TrainNIRConfig, raw, splits) -> TrainNIRConfig:
    """``cfg`` with the largest window (and a U-Net as much shallower) that every scene fits; unchanged when
    the preset's fits or nothing does (then training refuses with the scene that is too small)."""
    import math

    from geotool.models.shape_rules import max_patch_layers
    from geotool.nir.data import largest_fitting_window

    window = largest_fitting_window(raw, splits, cfg.window)
    if window is None or window == cfg.window:
        return cfg
    depth = cfg.depth - int(math.log2(cfg.window // window)) if cfg.generator == "pix2pix" else cfg.depth
    d_layers = min(cfg.d_layers, max_patch_layers(window))
    small = min(raw, key=lambda r: r[3].size)
    log.warning("%s (%dx%d px) is too small for %d-px windows on both sides of its train/validation split: "
                "training on %d-px windows (--depth %d, --d-layers %d); give --window to choose", small[0],
                small[3].shape[1], small[3].shape[0], cfg.window, window, depth, d_layers)
    return TrainNIRConfig.model_validate({**cfg.model_dump(), "window": window, "depth": depth, "d_layers": d_layers})


def expand_scenes(cfg: TrainNIRConfig) -> tuple[list[str], list[str] | None]:
    """The input scenes (files, globs, folders; each file one scene) and their NIR rasters, paired in order."""
    from geotool.io.files import expand_inputs

    inputs = [str(p) for p in expand_inputs(cfg.inputs, what="paired RGB/NIR raster")]
    if not cfg.nir_inputs:
        return inputs, None
    nir = [str(p) for p in expand_inputs(cfg.nir_inputs, what="NIR raster")]
    if len(nir) != len(inputs):
        raise ConfigError(f"--nir-raster gives {len(nir)} raster(s) for {len(inputs)} input scene(s); give one per input, in the same order")
    return inputs, nir


def match_val_scenes(inputs: list[str], patterns: list[str]) -> set[str]:
    """The inputs named by ``--val-scenes``: a pattern matches an input's path (as given or resolved), file
    name or stem, globs allowed. Every pattern must match and at least one scene must be left to train on."""
    import fnmatch

    if not patterns:
        return set()
    held = set()
    for pattern in patterns:
        hits = [p for p in inputs if any(fnmatch.fnmatch(name, pattern) for name in
                                          (p, str(Path(p).resolve()), Path(p).name, Path(p).stem))]
        if not hits:
            names = ", ".join(Path(p).name for p in inputs)
            raise ConfigError(f"--val-scenes {pattern} matches none of the input scenes ({names}); give one of their names or paths")
        held.update(hits)
    if len(held) == len(inputs):
        raise ConfigError(f"--val-scenes holds out all {len(inputs)} input scenes; leave at least one to train on")
    return held

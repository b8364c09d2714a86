"""``train-segmentation``: fit an smp model on image windows and export a self-contained ``model.ckpt``."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from geotool.errors import ConfigError
from geotool.labels import CLASS_NODATA
from geotool.segmentation import checkpoint
from geotool.segmentation.config import SegmentationConfig
from geotool.training.trainer import check_training_options

log = logging.getLogger(__name__)


def validate(cfg: SegmentationConfig) -> None:
    """Before reading or writing anything: the inputs the command needs are named, the files it names exist,
    and the smp model the settings describe can be built (option values were validated by the config)."""
    if not cfg.images:
        raise ConfigError("train-segmentation needs --images")
    if not cfg.labels:
        raise ConfigError("train-segmentation needs --labels (a vector file or mask rasters)")
    if cfg.output is None:
        raise ConfigError("train-segmentation needs --output RUN_DIR")
    check_training_options(cfg)
    if cfg.model_options:  # a wrong smp argument fails now, before anything is read or written
        from geotool.segmentation.model import build_model

        build_model(cfg.arch, cfg.encoder, 3, len(cfg.class_names), options=cfg.model_options)


@dataclass
class TrainingData:
    """What a training run reads: scenes, normalisation statistics and the two datasets."""

    train_scenes: list
    val_scenes: list
    mean: list
    std: list
    train_ds: Any
    val_ds: Any
    val_items: list


def build_training_data(cfg: SegmentationConfig, sample_transform=None) -> TrainingData:
    """Load the scenes, split them and build the training and validation datasets.

    Training windows get ``sample_transform`` (or, when ``cfg.oba`` is set, object-based augmentation
    with a bank from the training blocks only) and albumentations; validation windows get neither.
    """
    from geotool.segmentation.augment import build_augment
    from geotool.segmentation.data import load_scenes
    from geotool.training.normalization import normalize, window_statistics
    from geotool.training.sampler import FixedWindowDataset, RandomWindowDataset, grid_windows

    train_scenes, val_scenes = load_scenes(cfg)
    counts = {s.reader.count for s in train_scenes + val_scenes}
    if len(counts) != 1:
        raise ConfigError(f"the images have different band counts {sorted(counts)}; select the same bands with --bands")
    if sample_transform is None and cfg.oba is not None:
        from geotool.oba.online import build_online_oba_for_scenes

        sample_transform = build_online_oba_for_scenes(train_scenes, cfg.oba.model_copy(update={"ignore_index": cfg.ignore_index}),
                                                       cfg.class_names)
    try:
        stats = window_statistics(train_scenes, cfg.window, cfg.stats_windows, cfg.seed)
    except ValueError as exc:
        raise ConfigError(f"{exc}; lower --window or --val-fraction") from None
    mean, std = stats
    for i in stats.constant:
        log.warning("band %s of %s is constant over the training pixels (an alpha band?); it carries no information, "
                    "leave it out with --bands", train_scenes[0].bands[i], train_scenes[0].paths[0])
    norm = partial(normalize, mean=mean, std=std)
    try:
        train_ds = RandomWindowDataset(train_scenes, cfg.window, cfg.steps_per_epoch * cfg.batch_size, cfg.seed, "train",
                                       cfg.positive_fraction, cfg.ignore_index, sample_transform,
                                       build_augment(cfg.augment, cfg.ignore_index), norm)
    except ValueError as exc:
        raise ConfigError(f"{exc}; lower --window or --val-fraction") from None
    items = grid_windows(val_scenes, cfg.window, "val", cfg.val_windows, cfg.seed)
    if not items:
        raise ConfigError(f"no {cfg.window}-pixel validation window fits in the validation blocks; lower --window "
                          "(or give --val-images)")
    def val_item(img, tgt, val):
        return np.where(val[None], norm(img), 0.0).astype(np.float32), tgt, val

    val_ds = FixedWindowDataset(val_scenes, items, cfg.window, cfg.ignore_index, val_item)
    return TrainingData(train_scenes, val_scenes, mean, std, train_ds, val_ds, items)


def run_train_segmentation(cfg: SegmentationConfig, sample_transform=None) -> dict[str, Any]:
    """Train, export ``RUN/model.ckpt``, write curves, previews and the sidecar. Returns a summary.

    Args:
        cfg: resolved settings.
        sample_transform: optional ``(image, mask, valid, rng) -> (image, mask)`` applied to training
            windows only, in raw units, before normalisation and albumentations; overrides ``cfg.oba``.
    """
    validate(cfg)
    from geotool.segmentation.module import SegmentationModule
    from geotool.segmentation.plots import validation_panel
    from geotool.training.fit import TrainingTask, fit_and_export

    data = build_training_data(cfg, sample_transform)
    train_scenes, mean, std = data.train_scenes, data.mean, data.std
    n_classes = len(cfg.class_names)
    out = Path(cfg.output)
    arch = dict(arch=cfg.arch, encoder=cfg.encoder, in_channels=int(train_scenes[0].reader.count), classes=n_classes,
                options=dict(cfg.model_options))

    def preview(epoch, arrays):
        x, y, pred, valid = arrays
        validation_panel(x, y, pred, valid, cfg.ignore_index, n_classes, out / "previews" / f"epoch_{epoch:03d}.png",
                         title=f"epoch {epoch}: validation windows (image | label | prediction)")

    def export(module, trainer, ckpt_cb, val_dl):
        input_dtype = train_scenes[0].reader.dtypes[0]  # predict refuses scenes of another type
        summary = {
            "best_val_miou": float(ckpt_cb.best_model_score) if ckpt_cb.best_model_score is not None else None,
            "epochs": trainer.current_epoch,
            "steps": int(trainer.global_step),
            "train_scenes": len(train_scenes),
            "val_windows": len(data.val_items),
            "oba_objects": len(data.train_ds.sample_transform.bank) if cfg.oba is not None and sample_transform is None else None,
        }
        payload = {
            "format": checkpoint.FORMAT,
            "version": checkpoint.VERSION,
            "arch": arch,
            "bands": [b for b in train_scenes[0].bands],
            "band_count": arch["in_channels"],
            "mean": mean,
            "std": std,
            "class_names": list(cfg.class_names),
            "window": cfg.window,
            "overlap": cfg.overlap if cfg.overlap is not None else cfg.window // 4,
            "nodata_output": CLASS_NODATA,
            "input_nodata": cfg.nodata,
            "input_dtype": input_dtype,
            "task": cfg.task,
            "state_dict": {k: v.detach().cpu() for k, v in module.net.state_dict().items()},
            "train": {"images": [str(p) for p in cfg.images], "seed": cfg.seed},
        }
        return payload, summary

    task = TrainingTask(
        command="train-segmentation",
        build_module=lambda: SegmentationModule(arch, list(cfg.loss), cfg.ignore_index, cfg.lr, cfg.encoder_weights,
                                                cfg.lr_schedule, cfg.planned_steps),
        train_ds=data.train_ds, val_ds=data.val_ds, batch_size=cfg.batch_size,
        val_batch_size=min(cfg.batch_size, len(data.val_ds)), monitor="val_miou", mode="max", preview=preview,
        export=export, inputs=list(cfg.images) + list(cfg.labels), workers=cfg.workers)
    return fit_and_export(cfg, out, task, cfg.seed)

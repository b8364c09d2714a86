"""``geotool train-segmentation``, ``predict`` and ``evaluate``: semantic segmentation of GeoTIFFs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from geotool.cli._common import (
    STATE, AcceleratorOption, ClusterOption, DeviceOption, DevicesOption, InferenceBatchOption, NumNodesOption,
    OffsetOption, OverlapOption, PrecisionOption, ResumeOption, SchedulerFileOption, SchedulerOption, SeedOption,
    ShardOption, SkipExistingOption, StrategyOption, ThreadsOption, TTAOption, WindowOption, batch_options,
    echo_outcome, finish_batch, handle_errors, parse_band_list, parse_str_list, tiling_flags, trainer_flags,
)

PANEL = "Segmentation"


def register(app: typer.Typer) -> None:
    """Add the segmentation commands to ``app``."""
    app.command("train-segmentation", rich_help_panel=PANEL)(train_segmentation)
    app.command("predict", rich_help_panel=PANEL)(predict)
    app.command("evaluate", rich_help_panel=PANEL)(evaluate)


def _class_map(text: Optional[str]):
    if not text:
        return None
    from geotool.errors import ConfigError

    out = {}
    for part in text.split(","):
        if "=" not in part:
            raise ConfigError(f"--class-map takes value=id pairs like Building=1,Road=2, not {text!r}")
        k, v = part.rsplit("=", 1)
        try:
            out[k.strip()] = int(v)
        except ValueError:
            raise ConfigError(f"--class-map: {v!r} is not an integer class id") from None
    return out


@handle_errors
def train_segmentation(
    images: Annotated[list[str], typer.Option("--images", "-i", help="Image GeoTIFFs (repeat, or globs).")],
    labels: Annotated[list[str], typer.Option("--labels", "-l", help="Vector labels (one file) or one mask raster per image.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Run folder (model.ckpt, metrics.csv, PNGs).")],
    task: Annotated[Optional[str], typer.Option(help="Preset: buildings or forest (shipped in geotool/configs/).")] = None,
    config: Annotated[Optional[Path], typer.Option(help="Your YAML (over the preset; flags override both).")] = None,
    val_images: Annotated[Optional[list[str]], typer.Option(help="Separate validation scenes (repeat).")] = None,
    val_labels: Annotated[Optional[list[str]], typer.Option(help="Labels of the validation scenes.")] = None,
    bands: Annotated[Optional[str], typer.Option(help="Bands, 1-based, e.g. 1,2,3 (default: all but alpha).")] = None,
    nodata: Annotated[Optional[float], typer.Option(help="Override the images' nodata value.")] = None,
    class_attribute: Annotated[Optional[str], typer.Option(help="Vector column holding the class.")] = None,
    class_map: Annotated[Optional[str], typer.Option(help="value=id pairs, e.g. Vegetation=1,Building=2.")] = None,
    class_names: Annotated[Optional[str], typer.Option(help="Class names, background first, e.g. background,building.")] = None,
    arch: Annotated[Optional[str], typer.Option(help="smp architecture (Unet, UnetPlusPlus, FPN, DeepLabV3Plus, Segformer...).")] = None,
    encoder: Annotated[Optional[str], typer.Option(help="smp encoder, e.g. resnet18, mobilenet_v2.")] = None,
    encoder_weights: Annotated[Optional[Path], typer.Option(help="Local encoder state-dict file (default: random).")] = None,
    loss: Annotated[Optional[str], typer.Option(help="Losses summed: dice, ce, bce, focal, lovasz, jaccard, tversky.")] = None,
    window: Annotated[Optional[int], typer.Option(help="Window side, pixels (multiple of 32).")] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="Windows per step.")] = None,
    lr: Annotated[Optional[float], typer.Option(help="Learning rate.")] = None,
    lr_schedule: Annotated[Optional[str], typer.Option(help="Learning rate over the planned steps (--max-steps, or fewer under --max-epochs): constant, cosine or linear-decay (full rate for half the steps, then linearly to 0).")] = None,
    val_fraction: Annotated[Optional[float], typer.Option(help="Share of blocks held out (spatial split).")] = None,
    block: Annotated[Optional[int], typer.Option(help="Split block side, pixels (default 2 x window).")] = None,
    split_seed: Annotated[Optional[int], typer.Option(help="Seed of the block split (default: --seed).")] = None,
    positive_fraction: Annotated[Optional[float], typer.Option(help="Share of windows holding foreground.")] = None,
    max_steps: Annotated[Optional[int], typer.Option(help="Optimiser steps (step budget).")] = None,
    steps_per_epoch: Annotated[Optional[int], typer.Option(help="Steps per epoch.")] = None,
    max_epochs: Annotated[Optional[int], typer.Option(help="Cap on epochs.")] = None,
    accelerator: AcceleratorOption = None,
    devices: DevicesOption = None,
    num_nodes: NumNodesOption = None,
    precision: PrecisionOption = None,
    strategy: StrategyOption = None,
    early_stopping: Annotated[Optional[int], typer.Option(help="Patience in epochs on val mIoU (0 = off).")] = None,
    resume: ResumeOption = None,
    threads: ThreadsOption = None,
    workers: Annotated[Optional[int], typer.Option(help="DataLoader workers preparing training windows (0 = main process).")] = None,
    cache_mb: Annotated[Optional[float], typer.Option(help="Block cache of decoded image blocks, MB per process (main and each worker; default 512).")] = None,
    oba: Annotated[Optional[Path], typer.Option(help="On-the-fly object-based augmentation with these settings (a YAML file, or `oba` for the shipped preset); objects come from the training blocks only.")] = None,
    oba_probability: Annotated[Optional[float], typer.Option(help="Chance that a training window gets OBA (turns OBA on).")] = None,
    seed: SeedOption = None,
) -> None:
    """Train a segmentation model (smp + Lightning) on GeoTIFFs with vector or mask labels."""
    from geotool.config import load_config, read_yaml_or_preset
    from geotool.segmentation.config import SegmentationConfig
    from geotool.segmentation.train import run_train_segmentation

    cfg = load_config(SegmentationConfig, config, {
        "images": list(images), "labels": list(labels), "output": str(output),
        "val_images": val_images or None, "val_labels": val_labels or None,
        "bands": parse_band_list(bands), "nodata": nodata, "class_attribute": class_attribute,
        "class_map": _class_map(class_map), "class_names": parse_str_list(class_names), "arch": arch, "encoder": encoder,
        "encoder_weights": str(encoder_weights) if encoder_weights else None, "loss": parse_str_list(loss),
        "window": window, "batch_size": batch_size, "lr": lr, "lr_schedule": lr_schedule, "val_fraction": val_fraction, "block": block, "split_seed": split_seed,
        "positive_fraction": positive_fraction, "max_steps": max_steps, "steps_per_epoch": steps_per_epoch,
        "max_epochs": max_epochs, "early_stopping": early_stopping, "workers": workers, "cache_mb": cache_mb,
        **trainer_flags(accelerator, devices, num_nodes, precision, strategy, resume, threads, seed),
        "oba": read_yaml_or_preset(oba) if oba is not None else None, "oba.probability": oba_probability,
    }, preset=task)
    summary = run_train_segmentation(cfg)
    if summary and not STATE.quiet:
        score = summary["best_val_miou"]
        scored = f"best val mIoU {score:.4f}" if score is not None else "no validation yet: the run was shorter than an epoch"
        typer.echo(f"model: {summary['model']} ({scored}, {summary['steps']} steps)")


@handle_errors
def predict(
    model: Annotated[Path, typer.Argument(help="model.ckpt from train-segmentation.")],
    rasters: Annotated[list[str], typer.Argument(help="Rasters (paths, globs or folders).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Output folder.")],
    polygons: Annotated[Optional[Path], typer.Option(help="Also write predicted polygons (.gpkg).")] = None,
    min_area: Annotated[Optional[float], typer.Option(help="Drop polygons smaller than this (m^2 / CRS units^2).")] = None,
    simplify: Annotated[Optional[float], typer.Option(help="Polygon simplification tolerance (CRS units).")] = None,
    probabilities: Annotated[Optional[bool], typer.Option("--probabilities/--no-probabilities", help="Write class probabilities.")] = None,
    window: WindowOption = None,
    overlap: OverlapOption = None,
    batch_size: InferenceBatchOption = None,
    tta: TTAOption = None,
    offset: OffsetOption = None,
    preview: Annotated[Optional[bool], typer.Option("--preview/--no-preview", help="PNG overlay per raster.")] = None,
    device: DeviceOption = None,
    threads: ThreadsOption = None,
    skip_existing: SkipExistingOption = False,
    shard: ShardOption = None,
    scheduler: SchedulerOption = None,
    scheduler_file: SchedulerFileOption = None,
    cluster: ClusterOption = None,
) -> None:
    """Predict class rasters (and polygons) with a segmentation checkpoint, window by window.

    Each raster is one scene of a batch: a scene that fails is reported and the rest go on
    (OUTPUT/scenes.csv lists every scene; exit 2 when any failed)."""
    from geotool.config import load_config
    from geotool.segmentation.predict import PredictConfig, run_predict

    cfg = load_config(PredictConfig, None, {
        "model": str(model), "rasters": list(rasters), "output": str(output),
        "polygons": str(polygons) if polygons else None, "min_area": min_area, "simplify": simplify,
        "probabilities": probabilities, "preview": preview,
        **tiling_flags(window, overlap, batch_size, offset, tta, device, threads),
    })
    batch = batch_options(skip_existing, shard, scheduler, scheduler_file, cluster)
    res = run_predict(cfg, batch, on_outcome=lambda o: echo_outcome(
        o, lambda r: f"{r['raster']} -> {r['classes']} ({r['windows']} windows, {r['seconds']} s)"))
    finish_batch(res["batch"])


@handle_errors
def evaluate(
    predictions: Annotated[list[str], typer.Argument(help="Class GeoTIFF(s) from predict: paths, globs or folders.", show_default=False)],
    reference: Annotated[Path, typer.Argument(help="Reference: vector labels, a raster on the prediction's grid, or a folder of rasters named after the scenes.", show_default=False)],
    output: Annotated[Path, typer.Option("--output", "-o", help="metrics.json (one prediction) or a folder (several: <name>_metrics.json each and the pooled metrics.json).")],
    class_attribute: Annotated[Optional[str], typer.Option(help="Vector column holding the class.")] = None,
    class_map: Annotated[Optional[str], typer.Option(help="value=id pairs for vector references.")] = None,
    class_names: Annotated[Optional[str], typer.Option(help="Class names (default: from the prediction).")] = None,
    objects: Annotated[Optional[bool], typer.Option("--objects/--no-objects", help="Object-level F1 (default: 2 classes).")] = None,
    skip_existing: SkipExistingOption = False,
    shard: ShardOption = None,
    scheduler: SchedulerOption = None,
    scheduler_file: SchedulerFileOption = None,
    cluster: ClusterOption = None,
) -> None:
    """Score class rasters against a reference raster or vectors (IoU, F1, object F1).

    One prediction writes --output metrics.json; several are a batch into the folder --output (a scene
    that fails is reported and the rest go on; scenes.csv lists every scene)."""
    from geotool.config import load_config
    from geotool.io.files import expand_inputs
    from geotool.segmentation.evaluate import EvaluateConfig, format_table, run_evaluate, run_evaluate_batch

    batch = batch_options(skip_existing, shard, scheduler, scheduler_file, cluster)
    scenes = expand_inputs(predictions, what="prediction raster")
    lone = len(scenes) == 1 and Path(output).suffix.lower() == ".json" and not batch.skip_existing and not batch.shard and not batch.distributed()
    cfg = load_config(EvaluateConfig, None, {
        "prediction": str(scenes[0]), "reference": str(reference), "output": str(output),
        "class_attribute": class_attribute, "class_map": _class_map(class_map),
        "class_names": parse_str_list(class_names), "objects": objects,
    })
    if lone:
        record = run_evaluate(cfg)
        if not STATE.quiet:
            typer.echo(format_table(record))
        return
    result = run_evaluate_batch(cfg, [str(p) for p in scenes], batch, on_outcome=lambda o: echo_outcome(
        o, lambda r: f"{r['prediction']}: micro IoU {r['micro']['iou']}"))
    if result.pooled is not None and not STATE.quiet:
        typer.echo(f"all {len(result.pooled['scenes'])} scenes together -> {Path(output) / 'metrics.json'}")
        typer.echo(format_table(result.pooled))
    finish_batch(result)

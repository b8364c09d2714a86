"""``geotool oba-augment``: object-based augmentation (paste labelled objects onto label-free backgrounds)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from geotool.cli._common import (
    STATE, ClusterOption, SchedulerFileOption, SchedulerOption, ShardOption, SkipExistingOption, batch_options,
    echo_outcome, finish_batch, handle_errors, parse_band_list, parse_str_list,
)


def register(app: typer.Typer) -> None:
    """Add the OBA command to ``app``."""
    app.command("oba-augment", rich_help_panel="Augmentation")(oba_augment)


@handle_errors
def oba_augment(
    images: Annotated[list[Path], typer.Option("--images", help="Labelled scenes (GeoTIFF); repeat or glob.")],
    labels: Annotated[Path, typer.Option("--labels", help="Object polygons (any CRS) with a class attribute, or a class mask GeoTIFF.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Output folder.")],
    n: Annotated[int, typer.Option("-n", help="Number of scenes to compose.")] = 8,
    backgrounds: Annotated[Optional[list[Path]], typer.Option("--backgrounds", help="Extra label-free background GeoTIFFs (same bands).")] = None,
    bands: Annotated[Optional[str], typer.Option("--bands", help="Bands, 1-based or descriptions, e.g. 1,2,3.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (same seed, same files).")] = 0,
    config: Annotated[Optional[Path], typer.Option("--config", help="YAML config (a file, or a shipped preset name such as `oba`).")] = None,
    class_attribute: Annotated[Optional[str], typer.Option("--class-attribute", help="Label attribute with the class.")] = None,
    paste_classes: Annotated[Optional[str], typer.Option("--paste-classes", help="Classes to paste, comma-separated ids or names (default all).")] = None,
    scene_size: Annotated[Optional[int], typer.Option("--scene-size", help="Output scene size in pixels.")] = None,
    min_objects: Annotated[Optional[int], typer.Option("--min-objects", help="Fewest objects per scene.")] = None,
    max_objects: Annotated[Optional[int], typer.Option("--max-objects", help="Most objects per scene.")] = None,
    min_gap: Annotated[Optional[int], typer.Option("--min-gap", help="Minimum gap in pixels between objects.")] = None,
    blend: Annotated[Optional[str], typer.Option("--blend", help="hard or gaussian.")] = None,
    match: Annotated[Optional[str], typer.Option("--match", help="none, meanstd or histogram.")] = None,
    ignore_ring: Annotated[Optional[int], typer.Option("--ignore-ring", help="Ignore ring width in pixels (0 = none).")] = None,
    shadows: Annotated[Optional[bool], typer.Option("--shadows/--no-shadows", help="Cast shadows.")] = None,
    sun_azimuth: Annotated[Optional[float], typer.Option("--sun-azimuth", help="Sun azimuth, degrees from north.")] = None,
    sun_elevation: Annotated[Optional[float], typer.Option("--sun-elevation", help="Sun elevation, degrees.")] = None,
    max_label_fraction: Annotated[Optional[float], typer.Option("--max-label-fraction", help="Mined backgrounds may hold this fraction of labelled pixels (0 = strictly label-free; default: label-free when the scenes allow, else up to 30%, with a note).")] = None,
    skip_existing: SkipExistingOption = False,
    shard: ShardOption = None,
    scheduler: SchedulerOption = None,
    scheduler_file: SchedulerFileOption = None,
    cluster: ClusterOption = None,
) -> None:
    """Compose new training scenes by pasting labelled objects onto label-free backgrounds (OBA).

    Each composed scene is one unit of a batch: --skip-existing keeps scenes a run with the same settings,
    seed and inputs wrote; a rerun into a used folder replaces its scenes (none of an older run is kept)."""
    from geotool.config import load_config
    from geotool.oba.config import OBAAugmentConfig
    from geotool.oba.pipeline import run_oba_augment

    overrides = {
        "images": [str(p) for p in images], "labels": str(labels), "output": str(output), "n": n,
        "backgrounds": [str(p) for p in backgrounds] if backgrounds else None, "seed": seed,
        "bands": parse_band_list(bands),
        "class_attribute": class_attribute,
        "paste_classes": [int(c) if c.isdigit() else c for c in parse_str_list(paste_classes)] if paste_classes else None,
        "scene_size": scene_size,
        "min_gap": min_gap,
        "blend": blend,
        "match": match,
        "ignore_ring": ignore_ring,
        "max_label_fraction": max_label_fraction,
        "shadows.enabled": shadows,
        "shadows.sun_azimuth": sun_azimuth,
        "shadows.sun_elevation": sun_elevation,
    }
    cfg = load_config(OBAAugmentConfig, config, overrides)
    if min_objects is not None or max_objects is not None:  # one end given: the other from the config, kept ordered
        lo = cfg.n_objects[0] if min_objects is None else min_objects
        hi = cfg.n_objects[1] if max_objects is None else max_objects
        cfg = load_config(OBAAugmentConfig, None, {**cfg.model_dump(), "n_objects": (lo, max(lo, hi) if max_objects is None else hi)})
    batch = batch_options(skip_existing, shard, scheduler, scheduler_file, cluster)
    result = run_oba_augment(cfg, batch=batch, on_outcome=lambda o: echo_outcome(o) if o.status == "failed" else None)
    finish_batch(result.batch)
    if not STATE.quiet:
        typer.echo(
            f"wrote {result.scenes} scenes with {result.objects} pasted objects ({result.skipped} skipped) to "
            f"{result.output} (bank {result.bank_size} objects, {result.backgrounds} background windows)"
        )

"""``geotool train-nir``, ``generate-nir`` and ``evaluate-nir``: RGB -> NIR with a conditional GAN."""

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

PANEL = "NIR"


def register(app: typer.Typer) -> None:
    """Add the NIR commands to ``app``."""
    app.command("train-nir", rich_help_panel=PANEL)(train_nir)
    app.command("generate-nir", rich_help_panel=PANEL)(generate_nir)
    app.command("evaluate-nir", rich_help_panel=PANEL)(evaluate_nir)


def _one_band(text: Optional[str], option: str):
    bands = parse_band_list(text, option)
    if bands is None:
        return None
    if len(bands) != 1:
        from geotool.errors import ConfigError

        raise ConfigError(f"{option} takes one band, not {text!r}")
    return bands[0]


@handle_errors
def train_nir(
    paired: Annotated[Optional[list[str]], typer.Argument(help="Paired GeoTIFFs with RGB and NIR bands: paths, globs or folders, each file one scene.", show_default=False)] = None,
    rgb_bands: Annotated[Optional[str], typer.Option(help="R,G,B bands, e.g. 1,2,3 (NAIP) or 4,3,2 (Sentinel-2).")] = None,
    nir_band: Annotated[Optional[str], typer.Option(help="NIR band, e.g. 4 (NAIP) or 8 (Sentinel-2).")] = None,
    nir_raster: Annotated[Optional[list[str]], typer.Option(help="Separate NIR raster per input, same grid, in the inputs' order (repeat; globs, folders).")] = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Run folder.")] = None,
    scaling: Annotated[Optional[str], typer.Option(help="auto, uint8, reflectance10000, float or percentile.")] = None,
    window: Annotated[Optional[int], typer.Option(help="Training window, pixels.")] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="Windows per step.")] = None,
    max_steps: Annotated[Optional[int], typer.Option(help="Generator steps (step budget).")] = None,
    steps_per_epoch: Annotated[Optional[int], typer.Option(help="Steps per epoch (CSV row + preview PNG each).")] = None,
    val_fraction: Annotated[Optional[float], typer.Option(help="East fraction of each scene held out for validation.")] = None,
    val_scenes: Annotated[Optional[list[str]], typer.Option(help="Scene held out whole for validation: a name, stem, glob or path among the inputs (repeat); the others then train whole.")] = None,
    harmonise: Annotated[Optional[str], typer.Option(help="Per-scene RGB harmonisation onto the training colours: none, moments (mean/std) or histogram (quantiles); applied by generate-nir.")] = None,
    color_jitter: Annotated[Optional[float], typer.Option(help="Per-band gamma/contrast/brightness jitter of the training RGB (0 = off, 1 = strong).")] = None,
    generator: Annotated[Optional[str], typer.Option(help="pix2pix (classic U-Net) or smp.")] = None,
    ngf: Annotated[Optional[int], typer.Option(help="pix2pix generator base filters.")] = None,
    depth: Annotated[Optional[int], typer.Option(help="pix2pix U-Net depth (window multiple of 2**depth).")] = None,
    dropout: Annotated[Optional[bool], typer.Option("--dropout/--no-dropout", help="pix2pix decoder dropout.")] = None,
    norm: Annotated[Optional[str], typer.Option(help="pix2pix generator normalisation: instance (default) or batch.")] = None,
    encoder: Annotated[Optional[str], typer.Option(help="smp encoder, e.g. resnet18.")] = None,
    encoder_weights: Annotated[Optional[Path], typer.Option(help="Local encoder weights file for smp.")] = None,
    ndf: Annotated[Optional[int], typer.Option(help="PatchGAN base filters.")] = None,
    d_layers: Annotated[Optional[int], typer.Option(help="PatchGAN stride-2 layers (3 = 70-px patches).")] = None,
    gan_mode: Annotated[Optional[str], typer.Option(help="lsgan (default) or vanilla (pix2pix).")] = None,
    gan_weight: Annotated[Optional[float], typer.Option(help="Adversarial weight; 0 = generator alone (with --ssim-weight 0: the L1 baseline).")] = None,
    l1_weight: Annotated[Optional[float], typer.Option(help="lambda for L1 (default 100).")] = None,
    ssim_weight: Annotated[Optional[float], typer.Option(help="Weight of the 1-SSIM term (default 50; 0 = pix2pix).")] = None,
    ndvi_weight: Annotated[Optional[float], typer.Option(help="Weight of the NDVI-consistency term.")] = None,
    lr: Annotated[Optional[float], typer.Option(help="Learning rate.")] = None,
    lr_schedule: Annotated[Optional[str], typer.Option(help="linear-decay (pix2pix: full lr for half the steps, then linearly to 0), cosine or constant.")] = None,
    ema: Annotated[Optional[float], typer.Option(help="Decay of a moving average of the generator's weights, validated and exported (default 0.995; 0 = off).")] = None,
    export: Annotated[Optional[str], typer.Option(help="model.ckpt from the best validation epoch (best) or the final step (last).")] = None,
    seed: SeedOption = None,
    accelerator: AcceleratorOption = None,
    devices: DevicesOption = None,
    num_nodes: NumNodesOption = None,
    precision: PrecisionOption = None,
    strategy: StrategyOption = None,
    early_stopping: Annotated[Optional[int], typer.Option(help="Patience in epochs on val MAE (0 = off).")] = None,
    resume: ResumeOption = None,
    threads: ThreadsOption = None,
    config: Annotated[Optional[Path], typer.Option(help="YAML with any of these settings (flags override it).")] = None,
) -> None:
    """Train an RGB -> NIR conditional GAN (pix2pix) on paired GeoTIFFs."""
    from geotool.config import load_config
    from geotool.nir.train import TrainNIRConfig, run_train_nir

    cfg = load_config(TrainNIRConfig, config, {
        "inputs": list(paired) if paired else None,
        "nir_inputs": list(nir_raster) if nir_raster else None, "val_scenes": list(val_scenes) if val_scenes else None,
        "harmonise": harmonise, "color_jitter": color_jitter,
        "output": str(output) if output else None,
        "rgb_bands": parse_band_list(rgb_bands, "--rgb-bands"), "nir_band": _one_band(nir_band, "--nir-band"),
        "scaling": scaling, "window": window, "batch_size": batch_size, "max_steps": max_steps,
        "steps_per_epoch": steps_per_epoch, "val_fraction": val_fraction, "generator": generator, "ngf": ngf,
        "depth": depth, "dropout": dropout, "norm": norm, "encoder": encoder, "encoder_weights": str(encoder_weights) if encoder_weights else None,
        "ndf": ndf, "d_layers": d_layers, "gan_mode": gan_mode, "gan_weight": gan_weight, "l1_weight": l1_weight,
        "ssim_weight": ssim_weight, "ndvi_weight": ndvi_weight, "lr": lr, "lr_schedule": lr_schedule, "ema": ema, "export": export,
        "early_stopping": early_stopping,
        **trainer_flags(accelerator, devices, num_nodes, precision, strategy, resume, threads, seed),
    }, preset="nir")
    # the preset's window adapts to small scenes; one the user chose (flag or --config) is kept as given
    summary = run_train_nir(cfg, adapt_window=window is None and depth is None and config is None)
    if not STATE.quiet and summary:
        typer.echo(f"wrote {summary['model']} ({summary['export']} weights: val MAE {summary['val_mae_unit']:.4f} unit scale, "
                   f"{summary['steps']} generator steps, {summary['epochs']} epochs)")


@handle_errors
def generate_nir(
    model: Annotated[Path, typer.Argument(help="model.ckpt from train-nir.", show_default=False)],
    rgb: Annotated[list[str], typer.Argument(help="RGB GeoTIFFs: paths, globs or folders, each file one scene.", show_default=False)],
    output: Annotated[Path, typer.Option("--output", "-o", help="nir.tif (one input) or a folder.")],
    rgb_bands: Annotated[Optional[str], typer.Option(help="R,G,B bands of the inputs (default: as in training).")] = None,
    stack: Annotated[bool, typer.Option("--stack", help="Write RGB + NIR as one 4-band file.")] = False,
    ndvi: Annotated[bool, typer.Option("--ndvi", help="Also write <output>_ndvi.tif.")] = False,
    window: WindowOption = None,
    overlap: OverlapOption = None,
    batch_size: InferenceBatchOption = None,
    offset: OffsetOption = None,
    tta: TTAOption = None,
    device: DeviceOption = None,
    threads: ThreadsOption = None,
    skip_existing: SkipExistingOption = False,
    shard: ShardOption = None,
    scheduler: SchedulerOption = None,
    scheduler_file: SchedulerFileOption = None,
    cluster: ClusterOption = None,
) -> None:
    """Generate a NIR band (or RGB+NIR stack, NDVI) from RGB GeoTIFFs with a trained model.

    Each input file is one scene of a batch: a scene that fails is reported and the rest go on
    (OUTPUT/scenes.csv lists every scene; exit 2 when any failed)."""
    from geotool.config import load_config
    from geotool.nir.generate import GenerateNIRConfig, run_generate_nir

    cfg = load_config(GenerateNIRConfig, None, {
        "model": str(model), "inputs": list(rgb), "output": str(output),
        "rgb_bands": parse_band_list(rgb_bands, "--rgb-bands"), "stack": stack, "ndvi": ndvi,
        **tiling_flags(window, overlap, batch_size, offset, tta, device, threads),
    })
    batch = batch_options(skip_existing, shard, scheduler, scheduler_file, cluster)
    result = run_generate_nir(cfg, batch, on_outcome=lambda o: echo_outcome(
        o, lambda r: f"wrote {r['output']} ({r['windows']} windows, {r['megapixels_per_second']} Mpx/s)"))
    finish_batch(result)


@handle_errors
def evaluate_nir(
    generated: Annotated[list[str], typer.Argument(help="Generated NIR GeoTIFF(s) (or RGBN stacks): paths, globs or folders.", show_default=False)],
    reference: Annotated[Path, typer.Argument(help="Reference GeoTIFF with real RGB and NIR, or a folder of them named after the scenes.", show_default=False)],
    output: Annotated[Path, typer.Option("--output", "-o", help="metrics.json (one scene) or a folder (several: <name>_metrics.json each and metrics.json).")],
    nir_band: Annotated[Optional[str], typer.Option(help="NIR band of the reference.")] = None,
    rgb_bands: Annotated[Optional[str], typer.Option(help="R,G,B bands of the reference.")] = None,
    baseline: Annotated[Optional[str], typer.Option(help="Per-pixel baselines: linear, gb (comma-separated).")] = None,
    baseline_train: Annotated[Optional[list[Path]], typer.Option(help="Paired raster(s) the baselines are fitted on, pooled: the training scenes (repeat; default: the reference).")] = None,
    oracle: Annotated[Optional[bool], typer.Option("--oracle/--no-oracle", help="Also fit each baseline on the reference itself (<name>_oracle); default: with --baseline-train.")] = None,
    region: Annotated[Optional[str], typer.Option(help="all, east or west (split by --val-fraction).")] = None,
    val_fraction: Annotated[Optional[float], typer.Option(help="East fraction of the columns.")] = None,
    scaling: Annotated[Optional[str], typer.Option(help="auto, uint8, reflectance10000 or float.")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Seed of the gradient-boosting baseline.")] = None,
    plot: Annotated[Optional[Path], typer.Option(help="Comparison PNG (several scenes: any value writes <name>_comparison.png each).")] = None,
    skip_existing: SkipExistingOption = False,
    shard: ShardOption = None,
    scheduler: SchedulerOption = None,
    scheduler_file: SchedulerFileOption = None,
    cluster: ClusterOption = None,
) -> None:
    """Compare generated with real NIR: MAE, RMSE, PSNR, SSIM, SAM, NDVI agreement, seams, baselines."""
    from geotool.config import load_config
    from geotool.io.files import expand_inputs
    from geotool.nir.evaluate import EvaluateNIRConfig, run_evaluate_nir, run_evaluate_nir_batch

    batch = batch_options(skip_existing, shard, scheduler, scheduler_file, cluster)
    scenes = [str(p) for p in expand_inputs(generated, what="generated NIR raster")]
    lone = len(scenes) == 1 and Path(output).suffix.lower() == ".json" and not batch.skip_existing and not batch.shard and not batch.distributed()

    cfg = load_config(EvaluateNIRConfig, None, {
        "generated": scenes[0], "reference": str(reference), "output": str(output),
        "nir_band": _one_band(nir_band, "--nir-band"), "rgb_bands": parse_band_list(rgb_bands, "--rgb-bands"),
        "baseline": parse_str_list(baseline), "baseline_train": [str(p) for p in baseline_train] if baseline_train else None, "oracle": oracle,
        "region": region, "val_fraction": val_fraction, "scaling": scaling, "seed": seed,
        "plot": str(plot) if plot else None,
    })
    if not lone:
        result = run_evaluate_nir_batch(cfg, scenes, batch, on_outcome=lambda o: echo_outcome(
            o, lambda r: f"{r['generated']}: model MAE {r['model']['mae']:.4f} SSIM {r['model']['ssim']}"))
        if result.pooled is not None and not STATE.quiet:
            m = result.pooled["mean"].get("model", {})
            typer.echo(f"all {len(result.pooled['scenes'])} scenes (pixel-weighted): model MAE {m.get('mae', float('nan')):.4f} "
                       f"-> {Path(output) / 'metrics.json'}")
        finish_batch(result)
        return
    res = run_evaluate_nir(cfg)
    if not STATE.quiet:
        m = res["model"]
        line = f"model MAE {m['mae']:.4f} SSIM {m['ssim']:.3f} NDVI MAE {m['ndvi_mae']:.3f}"
        for name in cfg.baseline_names():
            line += f"; {name} MAE {res[name]['mae']:.4f}"
        typer.echo(line + f" -> {output}")

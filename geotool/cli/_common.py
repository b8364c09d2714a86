"""Shared CLI machinery: run state (debug/quiet), error handling, option parsing helpers.

Only light imports here: ``geotool --help`` must not import torch, rasterio or geopandas.
"""

from __future__ import annotations

import functools
import logging
import sys
import traceback
from pathlib import Path
from typing import Annotated, Any, Callable, Optional, TypeVar

import typer

from geotool.errors import ConfigError, GeotoolError
from geotool.run_state import STATE  # noqa: F401 - the CLI modules import STATE from here

F = TypeVar("F", bound=Callable[..., Any])


log = logging.getLogger("geotool.cli")


class Terminated(BaseException):
    """SIGTERM (a scheduler's kill, ``kill PID``): raised in the main thread so every atomic write in
    progress removes its temp file on the way out, as Ctrl-C does."""


def _raise_terminated(signum, frame) -> None:
    raise Terminated()


def configure_logging(verbose: int, log_file: Path | None) -> None:
    """Log to stderr (WARNING, INFO with -v, DEBUG with -vv) and optionally to a file (always DEBUG: the
    command line, resolved settings, each scene's result and every error with its traceback)."""
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    root = logging.getLogger("geotool")
    for old in root.handlers:
        old.close()
    root.handlers.clear()
    root.setLevel(logging.DEBUG)
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(level)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    if log_file is not None:
        try:
            file_handler = logging.FileHandler(log_file)
        except OSError as exc:
            typer.echo(f"error: --log-file {log_file}: {exc.strerror}; give a writable path", err=True)
            raise typer.Exit(2) from None
        file_handler.setLevel(logging.DEBUG)
        file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(file_handler)


def handle_errors(fn: F) -> F:
    """Turn a GeotoolError into one line on stderr and exit 2; any other exception exits 1.

    Ctrl-C exits 130 and SIGTERM 143, after the outputs being written have removed their temp files.
    With ``--debug`` the traceback is printed too; the log file always gets it.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        import shlex
        import signal
        import threading
        import time

        from geotool import __version__

        previous = None
        if threading.current_thread() is threading.main_thread():
            previous = signal.signal(signal.SIGTERM, _raise_terminated)
        command = fn.__name__.replace("_", "-")
        log.info("geotool %s %s: %s", __version__, command, shlex.join(sys.argv))
        log.debug("%s options: %s", command, kwargs)
        start = time.perf_counter()
        try:
            result = fn(*args, **kwargs)
            log.info("%s finished in %.1f s", command, time.perf_counter() - start)
            return result
        except (typer.Exit, typer.Abort, SystemExit) as exc:
            log.info("%s ended with exit code %s after %.1f s", command, getattr(exc, "exit_code", getattr(exc, "code", "?")),
                     time.perf_counter() - start)
            raise
        except GeotoolError as exc:
            if STATE.debug:
                traceback.print_exc()
            message = " ".join(str(exc).split())
            log.debug("%s failed:\n%s", command, traceback.format_exc())
            typer.echo(f"error: {message}", err=True)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            log.debug("interrupted:\n%s", traceback.format_exc())
            typer.echo("interrupted (Ctrl-C): outputs in progress were removed; finished ones are kept "
                       "(rerun with --skip-existing to go on)", err=True)
            raise typer.Exit(130) from None
        except Terminated:
            log.debug("terminated:\n%s", traceback.format_exc())
            typer.echo("terminated (SIGTERM): outputs in progress were removed; finished ones are kept "
                       "(rerun with --skip-existing to go on)", err=True)
            raise typer.Exit(143) from None
        except Exception as exc:  # noqa: BLE001 - the last line of defence: a bug, exit 1
            if STATE.debug:
                traceback.print_exc()
            from geotool.io.atomic import unwritable_reason

            reason = unwritable_reason(exc=exc)  # a write outside io.atomic (a logger, a library's own file)
            if reason is not None:
                log.debug("%s failed on an unwritable disk:\n%s", command, traceback.format_exc())
                where = getattr(exc, "filename", None)
                typer.echo(f"error: {f'{where}: ' if where else ''}{reason}; free some space or write to another disk",
                           err=True)
                raise typer.Exit(2) from None
            log.debug("%s failed with a bug:\n%s", command, traceback.format_exc())
            typer.echo(
                f"error: unexpected {type(exc).__name__}: {exc} "
                "(this is a bug in geotool; rerun with --debug for the traceback)",
                err=True,
            )
            raise typer.Exit(1) from None
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)

    return wrapper  # type: ignore[return-value]


def parse_int_list(text: str | None, option: str) -> list[int] | None:
    """Parse ``"1,2,3"`` into ``[1, 2, 3]``; ``None`` stays ``None``."""
    if text is None or text == "":
        return None
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ConfigError(f"{option} takes comma-separated integers like 1,2,3, not {text!r}") from None


def parse_band_list(text: str | None, option: str = "--bands") -> list[int | str] | None:
    """Parse a band selection: 1-based indices or band descriptions, comma-separated."""
    if text is None or text == "":
        return None
    bands: list[int | str] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        bands.append(int(part) if part.lstrip("-").isdigit() else part)
    if not bands:
        raise ConfigError(f"{option} is empty; give band numbers (1-based) or descriptions, e.g. 1,2,3")
    return bands


def parse_str_list(text: str | None) -> list[str] | None:
    """Parse ``"a,b"`` into ``["a", "b"]``; ``None`` stays ``None``."""
    if text is None or text == "":
        return None
    return [part.strip() for part in text.split(",") if part.strip()]


# ---- the sliding-window engine: the options predict and generate-nir share --------------------------------
WindowOption = Annotated[Optional[int], typer.Option(help="Window side, pixels (default: the training window).")]
OverlapOption = Annotated[Optional[int], typer.Option(help="Window overlap, pixels (default: the training run's, else window/4).")]
InferenceBatchOption = Annotated[Optional[int], typer.Option("--batch-size", help="Windows per forward pass.")]
OffsetOption = Annotated[Optional[int], typer.Option(help="Shift of the window lattice, pixels (seam checks).")]
TTAOption = Annotated[Optional[bool], typer.Option("--tta/--no-tta", help="Average over flips (test-time augmentation).")]
DeviceOption = Annotated[Optional[str], typer.Option(help="auto, cpu, cuda or cuda:N.")]
ThreadsOption = Annotated[Optional[int], typer.Option(help="CPU threads for torch (0 = default).")]


def tiling_flags(window, overlap, batch_size, offset, tta, device, threads) -> dict:
    """The engine's flags as config entries (``geotool.inference.InferenceOptions``)."""
    return {"window": window, "overlap": overlap, "batch_size": batch_size, "offset": offset, "tta": tta,
            "device": device, "threads": threads}


# ---- training at scale: the options both train commands share ---------------------------------------------
AcceleratorOption = Annotated[Optional[str], typer.Option(help="auto, cpu, gpu (cuda) or mps.")]
DevicesOption = Annotated[Optional[str], typer.Option(help="Devices per node: auto, 1, 2 or 0,1 (with --accelerator cpu: processes).")]
NumNodesOption = Annotated[Optional[int], typer.Option(help="Machines taking part (DDP across SLURM nodes).")]
PrecisionOption = Annotated[Optional[str], typer.Option(help="32-true, 16-mixed, bf16-mixed.")]
StrategyOption = Annotated[Optional[str], typer.Option(help="auto, or ddp for several devices or nodes.")]
ResumeOption = Annotated[Optional[Path], typer.Option(help="Resume from RUN/checkpoints/last.ckpt.")]
SeedOption = Annotated[Optional[int], typer.Option(help="Random seed.")]


def trainer_flags(accelerator, devices, num_nodes, precision, strategy, resume, threads, seed) -> dict:
    """The trainer's flags as config entries (``geotool.training.trainer.TrainerOptions``)."""
    return {"accelerator": accelerator, "devices": devices, "num_nodes": num_nodes, "precision": precision,
            "strategy": strategy, "resume": str(resume) if resume else None, "threads": threads, "seed": seed}


# ---- batches of scenes: the options and the report every per-scene command shares ----------------------
BATCH_PANEL = "Batches of scenes"
SkipExistingOption = Annotated[bool, typer.Option(
    "--skip-existing", rich_help_panel=BATCH_PANEL,
    help="Do not redo a scene whose final outputs all exist (outputs are atomic: a final name means finished).")]
ShardOption = Annotated[Optional[str], typer.Option(
    "--shard", rich_help_panel=BATCH_PANEL,
    help="K/N: only the K-th of N disjoint parts of the sorted scene list; `auto` reads a SLURM job array.")]
SchedulerOption = Annotated[Optional[str], typer.Option(
    "--scheduler", rich_help_panel=BATCH_PANEL,
    help="Run scenes on Dask: local:N (N worker processes here) or tcp://host:port (a running scheduler).")]
SchedulerFileOption = Annotated[Optional[Path], typer.Option(
    "--scheduler-file", rich_help_panel=BATCH_PANEL, help="scheduler.json of a running Dask cluster.")]
ClusterOption = Annotated[Optional[Path], typer.Option(
    "--cluster", rich_help_panel=BATCH_PANEL,
    help="Start a dask-jobqueue cluster (SLURM/PBS) from this YAML for the run (or `slurm`: the shipped example).")]


def batch_options(skip_existing: bool, shard: str | None, scheduler: str | None,
                  scheduler_file: Path | None, cluster: Path | None):
    """The validated :class:`~geotool.batch.BatchOptions` of a command's batch flags."""
    from geotool.batch import BatchOptions
    from geotool.config import load_config

    options = load_config(BatchOptions, None, {
        "skip_existing": skip_existing, "shard": shard, "scheduler": scheduler,
        "scheduler_file": str(scheduler_file) if scheduler_file else None, "cluster": str(cluster) if cluster else None})
    options.check()
    options.shard_part()  # --shard auto outside a SLURM array is refused before any work
    return options


def echo_outcome(outcome, done_line: Callable[[dict], str] | None = None) -> None:
    """One line per finished scene: what was written, skipped (stdout) or why it failed (stderr)."""
    if outcome.status == "failed":
        typer.echo(f"failed: {outcome.message}", err=True)
    elif STATE.quiet:
        return
    elif outcome.status == "skipped":
        typer.echo(f"skipped {outcome.input} (outputs exist)")
    elif done_line is not None and outcome.result is not None:
        typer.echo(done_line(outcome.result))


def finish_batch(result) -> None:
    """The batch's last line; exit 2 when any scene failed (the report names each one)."""
    if result.report is None:
        return
    if result.failed:
        typer.echo(result.summary_line(), err=True)
        raise typer.Exit(2)
    if not STATE.quiet:
        typer.echo(result.summary_line())

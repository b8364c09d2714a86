"""The one fit-and-export routine of the training commands (train-segmentation, train-nir).

A task brings its data (a training and a validation dataset), a way to build its LightningModule, a
preview drawer and an export function; :func:`fit_and_export` does the rest in the same order for every
task: trainer (which seeds everything), module, loaders, resume check, run folder, fit, best-or-last
restore, ``model.ckpt``, training curves and the sidecar.
"""

from __future__ import annotations

import logging
import signal
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from geotool.errors import GeotoolError
from geotool.training.trainer import TrainerOptions

log = logging.getLogger(__name__)


class TrainingInterrupted(GeotoolError):
    """Ctrl-C or SIGTERM stopped a training run after its checkpoint was saved; exit 128 + the signal number
    (130 for SIGINT, 143 for SIGTERM), as a shell reports a process a signal ended."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.exit_code = 128 + int(signum)


@dataclass
class TrainingTask:
    """What one task brings to :func:`fit_and_export`.

    Attributes:
        command: the command name written to the sidecar (``train-nir``).
        build_module: ``() -> LightningModule``; called after the trainer has seeded everything, so that the
            same seed gives the same initial weights.
        train_ds: the training dataset; it has an ``epoch`` attribute (windows are seeded by epoch).
        val_ds: the validation dataset.
        batch_size: training windows per step.
        val_batch_size: windows per validation batch.
        monitor: the logged metric that picks ``best.ckpt`` (``val_miou``).
        mode: ``"max"`` or ``"min"`` for ``monitor``.
        preview: ``(epoch, arrays) -> None``, draws ``RUN/previews/epoch_NNN.png`` from the module's first
            stored validation batch.
        export: ``(module, trainer, checkpoint_callback, val_loader) -> (payload, summary)``: the task's
            ``model.ckpt`` contents (its format, version, state dict, ...) and its summary, which is also
            stored in the payload under ``"summary"``.
        inputs: files recorded (with hashes) in the sidecar.
        workers: DataLoader worker processes for the training windows.
        optimizers_per_step: optimizer steps per training step (2 for a GAN, see :func:`make_trainer`).
        restore_best: load the best checkpoint's weights before export (else the final step's).
    """

    command: str
    build_module: Callable[[], Any]
    train_ds: Any
    val_ds: Any
    batch_size: int
    val_batch_size: int
    monitor: str
    mode: str
    preview: Callable[[int, tuple], None]
    export: Callable[..., tuple[dict, dict]]
    inputs: list[str]
    workers: int = 0
    optimizers_per_step: int = 1
    restore_best: bool = True


def fit_and_export(cfg: TrainerOptions, out: str | Path, task: TrainingTask, seed: int) -> Optional[dict]:
    """Fit ``task`` with ``cfg``'s Lightning options into the run folder ``out`` and export ``out/model.ckpt``.

    Returns:
        The task's summary with ``"model"`` (the model.ckpt path); an empty dict on every DDP process but
        the first, which alone writes the outputs.
    """
    import torch
    from torch.utils.data import DataLoader

    from geotool.config import write_sidecar
    from geotool.io.atomic import check_room
    from geotool.io.checkpoint import save_checkpoint
    from geotool.progress import progress_enabled
    from geotool.training.curves import plot_training_curves
    from geotool.training.trainer import (check_resume, epoch_callback, interrupt_callback, keep_earlier_metrics,
                                          make_trainer, read_metrics, restore_best)

    out = Path(out)
    last = out / "checkpoints" / "last.ckpt"
    interrupt = interrupt_callback(last)
    # make_trainer seeds everything; the module is built after it (same seed, same initial weights)
    trainer, ckpt_cb = make_trainer(cfg, out, monitor=task.monitor, mode=task.mode,
                                    callbacks=[epoch_callback(task.train_ds, task.preview), interrupt], seed=seed,
                                    progress=progress_enabled(), optimizers_per_step=task.optimizers_per_step)
    module = task.build_module()
    gen = torch.Generator().manual_seed(seed)
    # Under DDP every process takes its own share of windows (items rank, rank + world, ...) of an epoch world
    # times as long, so that an epoch is still steps_per_epoch steps; every process validates on all windows
    # (the same figures everywhere, no sampler split). One process: the plain sequential order.
    world, rank = trainer.world_size, trainer.global_rank
    task.train_ds.length *= world
    train_dl = DataLoader(task.train_ds, batch_size=task.batch_size, shuffle=False, num_workers=task.workers, generator=gen,
                          persistent_workers=False, sampler=range(rank, len(task.train_ds), world) if world > 1 else None)
    val_dl = DataLoader(task.val_ds, batch_size=task.val_batch_size, shuffle=False)
    check_resume(module, cfg.resume)
    resuming = cfg.resume or any(out.glob("hpc_ckpt_*.ckpt"))  # a requeued SLURM job resumes from its hpc checkpoint
    earlier = read_metrics(out / "metrics.csv") if resuming else []  # Lightning's logger deletes the file
    # Lightning writes checkpoints and logs non-atomically: refuse a read-only or nearly full disk before fitting
    check_room(out, _run_bytes(module), "the run (model, last and best checkpoints with optimizer state, logs)")
    if not resuming and trainer.is_global_zero:  # DDP's other processes start later and must not remove rank 0's files
        _remove_earlier_run(out)
    (out / "previews").mkdir(parents=True, exist_ok=True)  # every input is checked: only now create the run folder
    try:
        with _lightning_handles_sigterm():
            trainer.fit(module, train_dl, val_dl, ckpt_path=cfg.resume)
    except SystemExit:  # Lightning's SIGTERMException, or its exit after a second Ctrl-C
        if interrupt.signal is None:
            raise
    finally:
        interrupt.restore()
        if trainer.is_global_zero and earlier:
            keep_earlier_metrics(out / "metrics.csv", earlier)
    if interrupt.signal is not None:
        if not trainer.is_global_zero:
            return {}
        name = "SIGINT (Ctrl-C)" if interrupt.signal == signal.SIGINT else "SIGTERM"
        if interrupt.saved is None:
            raise TrainingInterrupted(f"training interrupted by {name} before a checkpoint could be saved; the last "
                                      f"epoch's checkpoint, if any, is {last}", interrupt.signal)
        raise TrainingInterrupted(f"training interrupted by {name} at step {trainer.global_step // task.optimizers_per_step}: "
                                  f"checkpoint saved to {last}; continue with --resume {last}", interrupt.signal)
    if not trainer.is_global_zero:
        return {}
    if task.restore_best:
        restore_best(module, ckpt_cb)
    payload, summary = task.export(module, trainer, ckpt_cb, val_dl)
    save_checkpoint(out / "model.ckpt", {**payload, "summary": summary})
    plot_training_curves(out / "metrics.csv", out / "training_curves.png")
    write_sidecar(out, task.command, cfg, inputs=task.inputs, seed=seed, results=summary)
    summary["model"] = str(out / "model.ckpt")
    return summary


# what a training run writes into its folder; a fresh run into a used folder replaces all of it
RUN_OUTPUTS = ("model.ckpt", "metrics.csv", "training_curves.png", "geotool.json", "hparams.yaml")
RUN_FOLDERS = ("checkpoints", "previews")


def _remove_earlier_run(out: Path) -> None:
    """Remove an earlier run's outputs from ``out`` so that a fresh run never mixes with it (old previews of
    later epochs, an old best checkpoint); other files in the folder are left alone."""
    import shutil

    found = [out / name for name in RUN_OUTPUTS if (out / name).is_file()]
    found += [out / name for name in RUN_FOLDERS if (out / name).is_dir() and any((out / name).iterdir())]
    if not found:
        return
    log.warning("%s already holds a training run: replacing it (%s); --resume %s continues a run instead", out,
                ", ".join(p.name for p in found), out / "checkpoints" / "last.ckpt")
    for path in found:
        shutil.rmtree(path) if path.is_dir() else path.unlink()


def _run_bytes(module) -> int:
    """Disk a run needs, in bytes: model.ckpt plus last.ckpt and a best checkpoint that each hold the weights
    and two optimizer moments, and a MiB for logs, curves and previews."""
    weights = sum(p.numel() * p.element_size() for p in module.parameters())
    return 7 * weights + 2**20


@contextmanager
def _lightning_handles_sigterm():
    """During fit, SIGTERM is Lightning's (stop at the next step, then the checkpoint above), not the CLI's
    immediate stop, which Lightning would otherwise call beside its own handler."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)

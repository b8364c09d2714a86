"""A Lightning Trainer from the options every training command shares."""

from __future__ import annotations

import logging
import math
import signal
import warnings
from pathlib import Path
from typing import Any, Optional

from pydantic import Field, field_validator

from geotool.config import GeotoolConfig
from geotool.training.schedule import LRSchedule

log = logging.getLogger(__name__)


class TrainerOptions(GeotoolConfig):
    """Lightning settings shared by the training commands."""

    accelerator: str = Field("auto", description="Lightning accelerator: auto, cpu, gpu (cuda) or mps.")
    devices: str = Field("auto", description="Devices per node: auto, 1, 2, or a list like 0,1 (with --accelerator cpu, "
                         "a number of processes).")
    num_nodes: int = Field(1, ge=1, description="Machines (SLURM nodes) taking part in DDP training.")
    precision: str = Field("32-true", description="32-true, 16-mixed, bf16-mixed.")
    strategy: str = Field("auto", description="auto or ddp (several devices or nodes; gloo on CPU, NCCL on GPUs).")
    max_steps: int = Field(2000, ge=1, description="Total training steps (the step budget; a GAN step updates both networks).")
    steps_per_epoch: int = Field(100, ge=1, description="Steps per epoch (one CSV row and one validation each).")
    max_epochs: Optional[int] = Field(None, ge=1, description="Cap on epochs (default: max_steps / steps_per_epoch).")
    lr_schedule: LRSchedule = Field("constant", description="Learning rate over the planned training steps: constant, "
                                    "linear-decay (constant for the first half, then linearly to zero) or cosine.")
    early_stopping: int = Field(0, ge=0, description="Stop after this many epochs without improvement (0 = off).")
    resume: Optional[str] = Field(None, description="Lightning checkpoint to resume (RUN/checkpoints/last.ckpt).")
    threads: int = Field(0, ge=0, description="torch CPU threads (0 = default).")

    @field_validator("devices")
    @classmethod
    def _devices(cls, value: str) -> str:
        try:
            parse_devices(value)
        except ValueError:
            raise ValueError(f"--devices takes auto, a count like 2 or a list like 0,1, not {value!r}") from None
        return value

    @property
    def planned_steps(self) -> int:
        """Training steps the run will take unless stopped early: ``max_steps``, or fewer when ``max_epochs``
        caps it. The learning-rate schedule spans these."""
        return min(self.max_steps, self.max_epochs * self.steps_per_epoch) if self.max_epochs else self.max_steps


def check_training_options(cfg: TrainerOptions) -> None:
    """What every training command checks on this machine before anything is read or written (the option
    values themselves were validated by the config model): local files that exist (``resume``;
    ``encoder_weights`` where the command has it) and the accelerator asked for."""
    from geotool.errors import InputFileError

    weights = getattr(cfg, "encoder_weights", None)
    if weights and not Path(weights).is_file():
        raise InputFileError(f"--encoder-weights {weights} does not exist; give a local state-dict file or omit it")
    if cfg.resume and not Path(cfg.resume).is_file():
        raise InputFileError(f"--resume {cfg.resume} does not exist; give RUN/checkpoints/last.ckpt")
    check_accelerator(cfg.accelerator)


ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps")


def check_accelerator(name: str) -> None:
    """``--accelerator`` names one Lightning knows and this machine has (a GPU asked for must be there)."""
    from geotool.errors import ConfigError, DeviceError

    if name not in ACCELERATORS:
        raise ConfigError(f"--accelerator takes {', '.join(ACCELERATORS)}, not {name!r}")
    if name in ("gpu", "cuda"):
        import torch

        if not torch.cuda.is_available():
            raise DeviceError(f"--accelerator {name}: torch finds no CUDA GPU on this machine; use --accelerator cpu (or auto)")
    elif name == "mps":
        import torch

        if not torch.backends.mps.is_available():
            raise DeviceError("--accelerator mps: Apple MPS is not available here; use --accelerator cpu (or auto)")


def parse_devices(text: str):
    """``"auto"`` -> "auto", ``"2"`` -> 2, ``"0,1"`` -> [0, 1]."""
    if text == "auto":
        return "auto"
    if "," in text:
        return [int(p) for p in text.split(",") if p]
    return int(text)


def make_trainer(opts: TrainerOptions, out_dir: str | Path, monitor: str, mode: str = "max",
                 callbacks: list[Any] | None = None, seed: int = 0, progress: bool = False,
                 optimizers_per_step: int = 1):
    """Seed everything and build a Trainer with best + last checkpoints and a CSV log in ``out_dir``.

    ``optimizers_per_step``: optimizer steps per training step (2 for a GAN's generator + discriminator
    under manual optimisation, where Lightning counts each one in ``global_step``), so that
    ``opts.max_steps`` always counts training steps.

    Returns:
        ``(trainer, checkpoint_callback)``; metrics go to ``out_dir/metrics.csv``, checkpoints to
        ``out_dir/checkpoints/{best,last}.ckpt``.
    """
    import lightning as L
    import torch
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger

    if opts.threads > 0:
        torch.set_num_threads(opts.threads)
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    L.seed_everything(seed, workers=True, verbose=False)
    out = Path(out_dir)  # an earlier run in the folder is removed by fit_and_export, with a note
    # Lightning's notices about the run folder geotool has just created, and a deprecation inside Lightning itself:
    # nothing the user can act on.
    for message in (".*exists and is not empty.*", ".*LeafSpec.*"):
        warnings.filterwarnings("ignore", message=message)
    # No validation metric to monitor at the replayed epoch end of a resume (see resume_callback) or in a run shorter
    # than an epoch: the last weights are then exported, and the command's summary says so.
    warnings.filterwarnings("ignore", message=".*could not find the monitored key.*")
    # Saved at the end of each training epoch (after its validation), the point Lightning resumes from cleanly: a
    # checkpoint written on validation end resumed one epoch short. No version counter: a resumed run replaces
    # last.ckpt and best.ckpt instead of writing last-v1.ckpt beside them.
    ckpt = ModelCheckpoint(dirpath=out / "checkpoints", filename="best", monitor=monitor, mode=mode, save_last=True,
                           save_on_train_epoch_end=True, enable_version_counter=False)
    cbs = [ckpt, resume_callback()] + list(callbacks or [])
    if opts.early_stopping > 0:
        cbs.append(EarlyStopping(monitor=monitor, mode=mode, patience=opts.early_stopping))
    epochs = opts.max_epochs or math.ceil(opts.max_steps / opts.steps_per_epoch)
    plugins = []
    from lightning.fabric.plugins.environments import SLURMEnvironment

    if SLURMEnvironment.detect():
        # under SLURM (sbatch --signal=SIGUSR1@90 --requeue): on the warning signal Lightning saves
        # out_dir/hpc_ckpt_N.ckpt and requeues the job, and the requeued job resumes from it by itself
        plugins.append(SLURMEnvironment(auto_requeue=True, requeue_signal=signal.SIGUSR1))
    trainer = L.Trainer(
        accelerator=opts.accelerator, devices=parse_devices(opts.devices), num_nodes=opts.num_nodes,
        precision=opts.precision, strategy=opts.strategy, max_epochs=epochs,
        max_steps=opts.max_steps * optimizers_per_step, callbacks=cbs, plugins=plugins or None,
        default_root_dir=str(out), use_distributed_sampler=False,
        logger=CSVLogger(str(out), name="", version=""), deterministic=True, num_sanity_val_steps=0,
        enable_progress_bar=progress, enable_model_summary=False, log_every_n_steps=1,
    )
    return trainer, ckpt


def epoch_callback(dataset, preview):
    """A Lightning callback shared by the training commands.

    At each training epoch start it sets ``dataset.epoch`` (the random windows are seeded by epoch), and
    after each validation epoch, on the main process only, it calls ``preview(epoch, arrays)`` with the
    module's first stored validation batch (``pl_module.val_outputs[0]``) as numpy arrays (floating tensors
    as float32, so bf16/fp16 runs work too) to write that epoch's preview PNG.
    """
    from lightning.pytorch.callbacks import Callback

    class EpochHooks(Callback):
        def on_train_epoch_start(self, trainer, pl_module):
            dataset.epoch = trainer.current_epoch

        def on_validation_epoch_end(self, trainer, pl_module):
            if trainer.sanity_checking or not trainer.is_global_zero or not pl_module.val_outputs:
                return
            arrays = tuple(t.float().numpy() if t.is_floating_point() else t.numpy() for t in pl_module.val_outputs[0])
            preview(trainer.current_epoch, arrays)

    return EpochHooks()


def resume_callback():
    """A callback that makes ``--resume`` from an end-of-epoch checkpoint continue exactly where the run stopped.

    Lightning saves ``last.ckpt`` in ``on_train_epoch_end``, after the epoch's ``processed`` counter is raised and
    before ``completed`` is. On resume it replays that epoch end, which raises ``processed`` (and the logged step)
    a second time: the run then stopped one epoch (``max_epochs``) short of an uninterrupted one and logged every
    later row one step late. Lowering both counters by the one the replay adds back gives the same step count,
    learning-rate schedule, epochs and ``metrics.csv`` steps as a run that never stopped (tested).
    """
    from lightning.pytorch.callbacks import Callback

    class ResumeAtEpochEnd(Callback):
        def on_load_checkpoint(self, trainer, pl_module, checkpoint):
            loop = checkpoint.get("loops", {}).get("fit_loop", {})
            epochs = loop.get("epoch_progress", {})
            if not all(epochs.get(k, {}).get("processed") == epochs.get(k, {}).get("completed", -9) + 1 for k in ("total", "current")):
                return  # not saved at an epoch end (an interrupt's checkpoint): Lightning resumes it as it is
            for k in ("total", "current"):
                epochs[k]["processed"] -= 1
            state = loop.get("epoch_loop.state_dict", {})
            if "_batches_that_stepped" in state:
                state["_batches_that_stepped"] -= 1

    return ResumeAtEpochEnd()


def interrupt_callback(path: Path):
    """A callback that turns Ctrl-C (SIGINT) and SIGTERM during ``fit`` into a checkpoint at ``path``.

    Lightning already stops at the next batch boundary on SIGTERM (``SIGTERMException``); Ctrl-C is routed the
    same way (a second Ctrl-C stops at once), so that the checkpoint holds whole steps only, never half of a
    GAN step. After ``fit``, :attr:`signal` is the signal received and :attr:`saved` the checkpoint written (or
    None).
    """
    import signal

    from lightning.pytorch.callbacks import Callback
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    class InterruptCheckpoint(Callback):
        def __init__(self) -> None:
            self.signal, self.saved, self._previous = None, None, None

        def on_fit_start(self, trainer, pl_module):
            def on_sigint(signum, frame):
                if self.signal is not None:
                    raise KeyboardInterrupt
                self.signal = signal.SIGINT
                trainer._signal_connector.received_sigterm = True  # stop at the next batch boundary

            try:
                self._previous = signal.signal(signal.SIGINT, on_sigint)
            except ValueError:  # not the main thread (a notebook's worker thread): Ctrl-C keeps Lightning's way
                self._previous = None

        def on_exception(self, trainer, pl_module, exception):
            if isinstance(exception, SIGTERMException):
                self.signal = self.signal or signal.SIGTERM
                epochs = trainer.fit_loop.epoch_progress.current
                if epochs.completed == epochs.ready and Path(path).is_file():
                    # stopped between epochs: last.ckpt, saved at this epoch's end, already holds this state, in
                    # the shape Lightning resumes exactly (a checkpoint saved now would resume into an empty epoch)
                    self.saved = Path(path)
                    return
                trainer.save_checkpoint(path)
                self.saved = Path(path)

        def restore(self) -> None:
            if self._previous is not None:
                signal.signal(signal.SIGINT, self._previous)
                self._previous = None

        def teardown(self, trainer, pl_module, stage):
            self.restore()

    return InterruptCheckpoint()


def keep_earlier_metrics(metrics_csv: Path, earlier: list[dict[str, str]]) -> None:
    """Put the rows of the run a ``--resume`` continues back in front of the resumed run's ``metrics.csv``.

    Lightning's CSV logger deletes the file when a run starts. Rows of epochs the resumed run logs again (it
    repeats an interrupted epoch) are taken from the resumed run.
    """
    import csv
    import io

    from geotool.io.files import write_text

    rows = read_metrics(metrics_csv)
    first = min((int(r["epoch"]) for r in rows if r.get("epoch", "").isdigit()), default=None)
    kept = [r for r in earlier if first is None or (r.get("epoch", "").isdigit() and int(r["epoch"]) < first)]
    if not kept:
        return
    fields = sorted(set().union(*(r.keys() for r in kept + rows)))  # Lightning's column order: sorted names
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(kept + rows)
    write_text(metrics_csv, buf.getvalue())


def read_metrics(metrics_csv: Path) -> list[dict[str, str]]:
    """The rows of a ``metrics.csv`` (none when it does not exist)."""
    import csv

    if not metrics_csv.is_file():
        return []
    with open(metrics_csv, newline="") as f:
        return list(csv.DictReader(f))


def check_resume(module, path: str | Path | None) -> None:
    """Refuse a ``--resume`` checkpoint this run cannot continue: unreadable, not a Lightning training
    checkpoint, or holding another network (another task, architecture or size). Lightning would fail
    deep inside ``fit`` with a traceback instead.
    """
    if path is None:
        return
    from geotool.errors import CheckpointError
    from geotool.io.checkpoint import load_checkpoint

    payload = load_checkpoint(path)
    state = payload.get("state_dict")
    if not isinstance(state, dict) or "global_step" not in payload:
        raise CheckpointError(f"--resume {path} is not a Lightning training checkpoint; give RUN/checkpoints/last.ckpt "
                              "(model.ckpt is the exported model and cannot be resumed)")
    want = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    have = {k: tuple(getattr(v, "shape", ())) for k, v in state.items()}
    theirs, ours = _training_command(have), _training_command(want)
    if theirs and ours and theirs != ours:
        raise CheckpointError(f"--resume {path} is a {theirs} checkpoint and cannot continue a {ours} run; give the "
                              f"RUN/checkpoints/last.ckpt of an earlier {ours} run, or start a new run")
    if want != have:
        differ = sorted(set(want) ^ set(have)) or sorted(k for k in want if want[k] != have[k])
        raise CheckpointError(f"--resume {path} holds another network than this run builds (first difference: "
                              f"{differ[0]}); resume with the same command, task and model settings, or start a new run")


def _training_command(state: dict) -> str | None:
    """Which train command's Lightning module holds these weights, told by their top-level names."""
    roots = {key.split(".", 1)[0] for key in state}
    if "generator" in roots:
        return "train-nir"
    if roots == {"net"}:
        return "train-segmentation"
    return None


def restore_best(module, checkpoint_callback) -> None:
    """Load the weights of the best checkpoint a ModelCheckpoint kept back into ``module`` (no-op when
    none was written, e.g. a run stopped before its first validation)."""
    from geotool.io.checkpoint import load_checkpoint

    best = checkpoint_callback.best_model_path
    if best:
        module.load_state_dict(load_checkpoint(best)["state_dict"])

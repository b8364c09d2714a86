"""Training lifecycle: --resume continues exactly, Ctrl-C saves a checkpoint and exits 130, a fresh run replaces an
earlier one. The real processes (SIGTERM to a training process, DDP on CPU) are in test_training_processes.py."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import torch

from geotool.config import load_config
from geotool.segmentation.config import SegmentationConfig
from geotool.segmentation.train import run_train_segmentation
from geotool.training.fit import TrainingInterrupted

from segmentation_helpers import LIGHT_ENCODER, LIGHT_OPTIONS, labelled_scene


@pytest.fixture(scope="session")
def scene(tmp_path_factory):
    return labelled_scene(tmp_path_factory.mktemp("lifecycle"))


def _cfg(scene, out, **kw):
    _, img, labels = scene
    return load_config(SegmentationConfig, None, {
        "images": [str(img)], "labels": [str(labels)], "output": str(out), "window": 64, "block": 64, "batch_size": 2,
        "max_steps": 6, "steps_per_epoch": 2, "threads": 1, "accelerator": "cpu", "lr_schedule": "linear-decay",
        "encoder": LIGHT_ENCODER, "model_options": LIGHT_OPTIONS, "seed": 3, **kw}, preset="buildings")


class SignalAt:
    """A sample transform that sends this process ``signum`` when the ``at``-th training window is drawn: a real
    signal at a known point of the run."""

    def __init__(self, at: int, signum: int) -> None:
        self.at, self.signum, self.n = at, signum, 0

    def __call__(self, image, mask, valid, rng):
        self.n += 1
        if self.n == self.at:
            os.kill(os.getpid(), self.signum)
        return image, mask


def _identity(image, mask, valid, rng):
    return image, mask


def _state(run: Path):
    last = torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)
    return (last["global_step"], last["epoch"], [s["last_epoch"] for s in last["lr_schedulers"]],
            last["optimizer_states"][0]["param_groups"][0]["lr"])


@pytest.fixture(scope="session")
def whole(scene):
    """The uninterrupted run."""
    out = scene[0] / "whole"
    return run_train_segmentation(_cfg(scene, out), sample_transform=_identity), out


@pytest.mark.parametrize("at", [7, 5], ids=["between-epochs", "mid-epoch"])
def test_interrupted_then_resumed_run_equals_an_uninterrupted_one(scene, whole, tmp_path, at):
    whole, whole_dir = whole
    before = signal.getsignal(signal.SIGINT)  # the default, or what an earlier test's library left in this process
    with pytest.raises(TrainingInterrupted) as info:
        # window 7 is the first of step 4 (2 windows a step): SIGINT arrives after epoch 1 ends; window 5 is inside it
        run_train_segmentation(_cfg(scene, tmp_path / "cut"), sample_transform=SignalAt(at, signal.SIGINT))
    assert info.value.exit_code == 130 and "--resume" in str(info.value)
    assert signal.getsignal(signal.SIGINT) is before  # Ctrl-C works again afterwards, as it did before
    assert not (tmp_path / "cut" / "model.ckpt").exists()
    cut = _state(tmp_path / "cut")
    assert cut[0] < 6
    resumed = run_train_segmentation(_cfg(scene, tmp_path / "cut", resume=str(tmp_path / "cut/checkpoints/last.ckpt")),
                                     sample_transform=_identity)
    assert resumed["steps"] == whole["steps"] == 6 and resumed["epochs"] == whole["epochs"] == 3
    assert _state(tmp_path / "cut") == _state(whole_dir)  # step count, epochs and the lr schedule
    assert sorted(p.name for p in (tmp_path / "cut/checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]  # no last-v1
    rows = (tmp_path / "cut/metrics.csv").read_text().splitlines()
    if at == 7:
        # resumed from an epoch end: the very same run, every logged figure included
        assert rows == (whole_dir / "metrics.csv").read_text().splitlines()
    else:
        # resumed inside epoch 1: the same epochs and steps are logged (the remaining windows of the cut epoch are
        # drawn again from that epoch's start, so the figures may differ)
        keys = [r.split(",")[:2] for r in rows]
        assert keys == [r.split(",")[:2] for r in (whole_dir / "metrics.csv").read_text().splitlines()]


def test_a_fresh_run_into_a_used_folder_replaces_the_earlier_run(scene, tmp_path, caplog):
    out = tmp_path / "run"
    run_train_segmentation(_cfg(scene, out), sample_transform=_identity)  # 3 epochs
    assert len(list((out / "previews").glob("*.png"))) == 3
    (out / "notes.txt").write_text("mine")
    run_train_segmentation(_cfg(scene, out, max_steps=2), sample_transform=_identity)  # 1 epoch, not resumed
    assert sorted(p.name for p in (out / "previews").glob("*.png")) == ["epoch_000.png"]
    assert _state(out)[0] == 2
    assert {line.split(",")[0] for line in (out / "metrics.csv").read_text().strip().splitlines()[1:]} == {"0"}
    assert (out / "notes.txt").read_text() == "mine"  # not the run's: left alone
    assert "already holds a training run: replacing it" in caplog.text

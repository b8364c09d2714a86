"""Real training processes: SIGTERM (a scheduler's kill) to a training process saves a checkpoint and exits 143;
--devices 2 --strategy ddp on CPU runs two processes that write one model. Each starts Python processes that
import torch and Lightning (tens of seconds of CPU on a loaded machine), so they are a file of their own that
pytest-xdist runs beside the others; the in-process lifecycle tests are in test_training_lifecycle.py."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from segmentation_helpers import LIGHT_YAML, labelled_scene


@pytest.fixture(scope="session")
def scene(tmp_path_factory):
    return labelled_scene(tmp_path_factory.mktemp("processes"))


def _subprocess_env() -> dict:
    """This checkout first on the path of a geotool subprocess."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parent.parent), os.environ.get("PYTHONPATH", "")])}


def _train_command(scene, out: Path) -> list[str]:
    d, img, labels = scene
    light = d / "light.yaml"
    light.write_text(LIGHT_YAML)
    return [sys.executable, "-m", "geotool", "train-segmentation", "--images", str(img), "--labels", str(labels),
            "--task", "buildings", "--config", str(light), "--output", str(out), "--window", "64", "--block", "64",
            "--batch-size", "2", "--max-steps", "100000", "--steps-per-epoch", "2", "--threads", "1", "--accelerator", "cpu"]


def test_sigterm_saves_a_checkpoint_and_says_how_to_resume(scene, tmp_path):
    """SIGTERM (a scheduler's kill) to a real training process: one line, exit 143, last.ckpt saved. (SIGINT,
    which geotool routes the same way, is sent in process by test_interrupted_then_resumed_run_equals_an_uninterrupted_one.)"""
    env = _subprocess_env()
    runs = {}
    for signum in (signal.SIGTERM,):
        out = tmp_path / signum.name
        runs[signum] = (out, subprocess.Popen(_train_command(scene, out), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                              text=True, env=env))
    try:
        deadline = time.monotonic() + 600  # generous: on a loaded 2-core machine the imports alone can take a minute
        for signum, (out, proc) in runs.items():
            while not (out / "checkpoints" / "last.ckpt").exists():  # training is under way: an epoch has ended
                if proc.poll() is not None or time.monotonic() > deadline:
                    proc.kill()
                    pytest.fail(f"{signum.name} run ended or stalled before its first checkpoint: {proc.communicate()[1]}")
                time.sleep(0.1)
            proc.send_signal(signum)
        for signum, (out, proc) in runs.items():
            _, err = proc.communicate(timeout=120)
            lines = [line for line in err.splitlines() if line.strip()]
            assert proc.returncode == 128 + signum, err  # 130 for SIGINT, 143 for SIGTERM
            last = out / "checkpoints" / "last.ckpt"
            assert len(lines) == 1 and "interrupted" in lines[0] and f"--resume {last}" in lines[0], err
            assert torch.load(last, weights_only=False)["global_step"] >= 2
            assert not (out / "model.ckpt").exists()
    finally:
        for _, proc in runs.values():
            if proc.poll() is None:
                proc.kill()


def test_ddp_on_cpu_with_two_processes_writes_one_model(tmp_path):
    """--devices 2 --strategy ddp on CPU: Lightning starts a second process (gloo); the run finishes, the first
    process alone writes model.ckpt, and both processes' steps make up the planned step count."""
    from nir_helpers import TINY, context_scene

    scene = context_scene(tmp_path / "s.tif", size=112, seed=1)
    out = tmp_path / "run"
    env = _subprocess_env()
    few = tmp_path / "two_val_windows.yaml"
    few.write_text("val_windows: 2\n")  # rank 0 draws a preview of the validation windows each epoch
    cmd = [sys.executable, "-m", "geotool", "train-nir", str(scene), "--output", str(out), *TINY, "--max-steps", "2",
           "--steps-per-epoch", "2", "--threads", "1", "--gan-weight", "0", "--ema", "0", "--config", str(few),
           "--devices", "2", "--strategy", "ddp"]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in out.iterdir() if p.suffix == ".ckpt") == ["model.ckpt"]
    assert res.stdout.count("wrote ") == 1  # one summary line: the second process reports nothing
    payload = torch.load(out / "model.ckpt", weights_only=False)
    assert payload["summary"]["steps"] == 2
    assert torch.load(out / "checkpoints" / "last.ckpt", weights_only=False)["global_step"] == 2

"""Checkpoint formats and the inference path: versions checked, weights-only state dicts, no training imports."""

from __future__ import annotations

import subprocess
import sys

import pytest

from geotool.errors import CheckpointError, DeviceError
from geotool.io.checkpoint import load_state_dict, save_checkpoint


@pytest.mark.parametrize("task", ["nir", "segmentation"])
def test_newer_format_version_is_refused_with_upgrade_advice(tmp_path, task):
    from importlib import import_module

    ckpt = import_module(f"geotool.{task}.checkpoint")
    path = save_checkpoint(tmp_path / "model.ckpt", {"format": ckpt.FORMAT, "version": ckpt.VERSION + 1})
    with pytest.raises(CheckpointError, match="upgrade geotool"):
        ckpt.load_model(path)
    path = save_checkpoint(tmp_path / "bare.ckpt", {"format": ckpt.FORMAT, "version": ckpt.VERSION})
    with pytest.raises(CheckpointError, match="incomplete \\(no 'state_dict'\\); retrain"):
        ckpt.load_model(path)
    foreign = "geotool-segmentation" if task == "nir" else "geotool-nir"
    path = save_checkpoint(tmp_path / "other.ckpt", {"format": foreign, "version": 1})
    with pytest.raises(CheckpointError, match=f"not a {ckpt.FORMAT} checkpoint"):
        ckpt.load_model(path)


def test_state_dict_reader_unwraps_and_refuses_non_mappings(tmp_path):
    import torch

    torch.save({"state_dict": {"w": torch.zeros(2)}}, tmp_path / "wrapped.pt")
    assert list(load_state_dict(tmp_path / "wrapped.pt", "--encoder-weights")) == ["w"]
    torch.save([torch.zeros(2)], tmp_path / "list.pt")
    with pytest.raises(CheckpointError, match="does not hold a state dict"):
        load_state_dict(tmp_path / "list.pt", "--encoder-weights")
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(CheckpointError, match="not a readable torch state dict"):
        load_state_dict(tmp_path / "junk.pt", "--encoder-weights")


def test_device_resolver_refuses_absent_devices_cleanly():
    import torch

    from geotool.models.device import resolve_device

    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(DeviceError, match="not a device name"):
        resolve_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="no CUDA GPU.*--device cpu"):
            resolve_device("cuda")


def test_inference_imports_no_training_code():
    """predict and generate-nir load models through the checkpoint modules, not the train modules (which pull
    in Lightning and the data pipeline)."""
    code = (
        "import sys, geotool.segmentation.predict, geotool.nir.generate, geotool.segmentation.checkpoint, "
        "geotool.nir.checkpoint; "
        "bad = [m for m in sys.modules if m in ('geotool.segmentation.train', 'geotool.nir.train', 'lightning') "
        "or m.startswith('geotool.training')]; print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""


def test_inference_options_fill_the_window_from_the_checkpoint():
    """Both inference commands share one set of options: the checkpoint's window and overlap unless the run
    gives its own; without a stored overlap, a quarter of the window."""
    from geotool.nir.generate import GenerateNIRConfig
    from geotool.segmentation.predict import PredictConfig

    cfg = PredictConfig(model="m.ckpt", rasters=["a.tif"], output="out", batch_size=3, tta=True)
    spec = cfg.tiling_spec(256, 64)
    assert (spec.window, spec.overlap, spec.batch_size, spec.tta) == (256, 64, 3, True)
    assert cfg.model_copy(update={"window": 512}).tiling_spec(256, 64).overlap == 64  # the stored overlap is kept
    nir = GenerateNIRConfig(window=128)
    assert (nir.tiling_spec(256).window, nir.tiling_spec(256).overlap) == (128, 32)
    assert set(PredictConfig.model_fields) >= {"window", "overlap", "batch_size", "tta", "offset", "device", "threads"}


def test_resume_checkpoint_of_another_network_or_kind_is_refused(tmp_path):
    import torch

    from geotool.training.trainer import check_resume

    net = torch.nn.Conv2d(3, 2, 1)
    good = {"state_dict": net.state_dict(), "global_step": 4}
    torch.save(good, tmp_path / "last.ckpt")
    check_resume(net, tmp_path / "last.ckpt")  # the same network: accepted
    check_resume(net, None)
    torch.save({"state_dict": torch.nn.Conv2d(4, 2, 1).state_dict(), "global_step": 4}, tmp_path / "other.ckpt")
    with pytest.raises(CheckpointError, match="holds another network.*weight"):
        check_resume(net, tmp_path / "other.ckpt")
    torch.save({"format": "geotool-nir", "state_dict": net.state_dict()}, tmp_path / "model.ckpt")
    with pytest.raises(CheckpointError, match="not a Lightning training checkpoint"):
        check_resume(net, tmp_path / "model.ckpt")
    (tmp_path / "broken.ckpt").write_bytes(b"\x80\x04 truncated")
    with pytest.raises(CheckpointError, match="corrupted"):
        check_resume(net, tmp_path / "broken.ckpt")

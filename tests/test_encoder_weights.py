"""Local encoder weights in torchvision, smp and prefixed (timm/Lightning) key layouts load exactly; others are refused."""

from __future__ import annotations

import pytest
import torch

from geotool.errors import CheckpointError
from geotool.segmentation.model import build_model


@pytest.fixture(scope="session")
def resnet18_state():
    import torchvision

    torch.manual_seed(1)
    return torchvision.models.resnet18().state_dict()


def _encoder_equals(model, state) -> bool:
    own = model.encoder.state_dict()
    return all(torch.equal(own[k], v) for k, v in state.items() if k in own)


@pytest.mark.parametrize("prefix", ["", "model.encoder.", "module."])
def test_torchvision_and_prefixed_layouts_load_every_tensor(tmp_path, resnet18_state, prefix):
    path = tmp_path / "w.pth"
    torch.save({f"{prefix}{k}": v for k, v in resnet18_state.items()}, path)
    model = build_model("Unet", "resnet18", 3, 2, encoder_weights=str(path))
    assert _encoder_equals(model, resnet18_state)
    assert torch.equal(model.encoder.conv1.weight, resnet18_state["conv1.weight"])


def test_weights_of_another_encoder_or_part_of_one_are_refused(tmp_path, resnet18_state):
    import torchvision

    other = tmp_path / "mv2.pth"
    torch.save(torchvision.models.mobilenet_v2().state_dict(), other)
    with pytest.raises(CheckpointError, match="shares no parameter name with encoder resnet18"):
        build_model("Unet", "resnet18", 3, 2, encoder_weights=str(other))
    part = tmp_path / "part.pth"
    torch.save({k: v for k, v in resnet18_state.items() if not k.startswith("layer4")}, part)
    with pytest.raises(CheckpointError, match="covers .* of .* tensors of encoder resnet18"):
        build_model("Unet", "resnet18", 3, 2, encoder_weights=str(part))
    with pytest.raises(CheckpointError, match="conv1.weight is \\(64, 3, 7, 7\\)"):  # 4 input bands
        build_model("Unet", "resnet18", 4, 2, encoder_weights=str(_save(tmp_path, resnet18_state)))


def _save(tmp_path, state):
    path = tmp_path / "full.pth"
    torch.save(state, path)
    return path

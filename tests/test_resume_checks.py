"""`--resume` refuses a checkpoint the run cannot continue, saying which command wrote it."""

import pytest
import torch
from torch import nn

from geotool.errors import CheckpointError
from geotool.io.checkpoint import save_checkpoint
from geotool.training.trainer import check_resume


class SegmentationLike(nn.Module):
    def __init__(self, width: int = 4):
        super().__init__()
        self.net = nn.Conv2d(3, width, 1)


class NIRLike(nn.Module):
    def __init__(self):
        super().__init__()
        self.generator = nn.Conv2d(3, 1, 1)
        self.discriminator = nn.Conv2d(4, 1, 1)


def _lightning_checkpoint(path, module: nn.Module):
    return save_checkpoint(path, {"state_dict": module.state_dict(), "global_step": 3, "epoch": 0})


@pytest.mark.parametrize("theirs, ours, command", [(NIRLike, SegmentationLike, "train-nir"),
                                                   (SegmentationLike, NIRLike, "train-segmentation")])
def test_a_checkpoint_of_the_other_train_command_is_named(tmp_path, theirs, ours, command):
    path = _lightning_checkpoint(tmp_path / "last.ckpt", theirs())
    with pytest.raises(CheckpointError, match=f"is a {command} checkpoint and cannot continue"):
        check_resume(ours(), path)


def test_same_command_other_size_names_the_first_difference(tmp_path):
    path = _lightning_checkpoint(tmp_path / "last.ckpt", SegmentationLike(width=8))
    with pytest.raises(CheckpointError, match=r"another network .*net\.bias"):
        check_resume(SegmentationLike(width=4), path)


def test_matching_checkpoint_passes(tmp_path):
    torch.manual_seed(0)
    path = _lightning_checkpoint(tmp_path / "last.ckpt", SegmentationLike())
    assert check_resume(SegmentationLike(), path) is None

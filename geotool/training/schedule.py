"""Learning-rate schedules, stepped once per training step."""

from __future__ import annotations

import math
from typing import Literal

LRSchedule = Literal["constant", "linear-decay", "cosine"]


def lr_factor(kind: str, total_steps: int):
    """The multiplier of the base learning rate at step ``i`` (for ``torch.optim.lr_scheduler.LambdaLR``).

    - ``constant``: 1 throughout.
    - ``linear-decay``: pix2pix's schedule (Isola et al. 2017): 1 for the first half of ``total_steps``,
      then linearly down towards zero over the second half.
    - ``cosine``: half a cosine from 1 at step 0 towards zero at ``total_steps`` (Loshchilov & Hutter 2017,
      without restarts).

    The decaying schedules never go below ``1 / total_steps``.
    """
    floor = 1.0 / max(1, total_steps)
    if kind == "constant":
        return lambda i: 1.0
    if kind == "linear-decay":
        half = max(1, total_steps // 2)
        decay = max(1, total_steps - half)  # steps of the falling part (1 for a one-step run)
        return lambda i: max(floor, min(1.0, (total_steps - i) / decay))
    if kind == "cosine":
        return lambda i: max(floor, 0.5 * (1 + math.cos(math.pi * min(i, total_steps) / max(1, total_steps))))
    raise ValueError(f"unknown learning-rate schedule {kind!r}; use constant, linear-decay or cosine")


def make_scheduler(optimizer, kind: str, total_steps: int):
    """A ``LambdaLR`` following :func:`lr_factor`."""
    import torch

    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(kind, total_steps))

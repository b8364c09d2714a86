"""Batches between NumPy on the host and a torch device, for the sliding-window engine's model calls.

On a CUDA device the host side goes through page-locked (pinned) buffers, reused from call to call, and the
copies are ``non_blocking``: a copy from pinned memory is a DMA the GPU runs on its own, so the host thread
is free as soon as it is queued, and pinning is paid once per buffer shape instead of on every batch (an
ordinary pageable array is first staged through a pinned buffer by the driver, synchronously). Elsewhere
(CPU, MPS) arrays are wrapped and moved as plain ``Tensor.to`` does.
"""

from __future__ import annotations

import numpy as np


class HostDeviceCopy:
    """Move NumPy arrays to ``device`` and results back, through pinned buffers on CUDA.

    One instance serves one model call at a time (the engine calls the model from one thread): the pinned
    input buffers are rewritten by the next :meth:`to_device`, which is safe because :meth:`to_host` waits
    for the device's stream, and so for every copy queued before it.

    Args:
        device: a torch device or its name.
    """

    def __init__(self, device) -> None:
        import torch

        self.device = torch.device(device)
        self.pinned = self.device.type == "cuda" and torch.cuda.is_available()
        self._buffers: dict[str, object] = {}

    def _buffer(self, name: str, like):
        import torch

        buf = self._buffers.get(name)
        if buf is None or buf.shape != like.shape or buf.dtype != like.dtype:
            buf = torch.empty(like.shape, dtype=like.dtype, pin_memory=True)
            self._buffers[name] = buf
        return buf

    def to_device(self, array: np.ndarray, name: str = "input"):
        """A device tensor holding ``array``; ``name`` keeps a separate pinned buffer per kind of input."""
        import torch

        host = torch.from_numpy(np.ascontiguousarray(array))
        if not self.pinned:
            return host.to(self.device)
        buf = self._buffer(name, host)
        buf.copy_(host)
        return buf.to(self.device, non_blocking=True)

    def to_host(self, tensor) -> np.ndarray:
        """``tensor`` as a NumPy array the caller owns (on CUDA: copied into a pinned buffer, then out of it)."""
        if not self.pinned:
            return tensor.cpu().numpy()
        import torch

        buf = self._buffer("output", tensor)
        buf.copy_(tensor, non_blocking=True)
        torch.cuda.current_stream(self.device).synchronize()  # the copy above, and every one before it, is done
        return buf.numpy().copy()

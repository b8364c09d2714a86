"""Options every inference command shares (``predict``, ``generate-nir``): the sliding window, the device and
CPU threads, with one way to turn them into a :class:`~geotool.io.tiling.TilingSpec` and a torch device."""

from __future__ import annotations

from typing import Optional

from pydantic import Field

from geotool.config import GeotoolConfig


class InferenceOptions(GeotoolConfig):
    """Window, batch, flips, device and threads of a tiled inference run (pixels where a size)."""

    window: Optional[int] = Field(None, description="Window side, pixels (default: the training window).")
    overlap: Optional[int] = Field(None, description="Window overlap, pixels (default: the checkpoint's, else a quarter of the window).")
    batch_size: int = Field(8, description="Windows per forward pass.")
    tta: bool = Field(False, description="Average over horizontal/vertical flips (4 passes per window).")
    offset: int = Field(0, description="Shift of the window lattice, pixels (seam checks).")
    device: str = Field("auto", description="auto (a CUDA GPU when there is one), cpu, cuda or cuda:N.")
    threads: int = Field(0, description="torch CPU threads (0 = torch's default).")

    def tiling_spec(self, trained_window: int, trained_overlap: int | None = None):
        """The engine's settings: this run's window and overlap, else the checkpoint's (an overlap the
        checkpoint does not give is a quarter of the window)."""
        from geotool.io.tiling import TilingSpec

        window = self.window or int(trained_window)
        if self.overlap is not None:
            overlap = self.overlap
        else:
            overlap = int(trained_overlap) if trained_overlap is not None else window // 4
        return TilingSpec(window=window, overlap=overlap, batch_size=self.batch_size, tta=self.tta, offset=self.offset)

    def torch_device(self):
        """Resolve ``device`` (refusing an absent GPU) and apply ``threads``; call before loading the model."""
        from geotool.batch.job import worker_slot
        from geotool.models.device import resolve_device, spread_over_gpus

        device = spread_over_gpus(resolve_device(self.device), worker_slot())
        if self.threads > 0:
            import torch

            torch.set_num_threads(self.threads)
        return device

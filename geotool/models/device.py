"""One device resolver for every inference command (``predict``, ``generate-nir``)."""

from __future__ import annotations

from geotool.errors import DeviceError


def resolve_device(name: str):
    """``"auto"`` -> the first CUDA GPU when torch sees one, else the CPU; ``"cpu"``, ``"cuda"``, ``"cuda:1"``,
    ``"mps"`` as given, after checking the machine has it.

    Raises:
        DeviceError: the device is unknown or absent (the message says what was found and how to run on CPU).
    """
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise DeviceError(f"--device {name!r} is not a device name; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        found = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if found == 0:
            raise DeviceError(f"--device {name}: torch finds no CUDA GPU on this machine; use --device cpu (or auto)")
        if device.index is not None and device.index >= found:
            raise DeviceError(f"--device {name}: this machine has {found} CUDA GPU(s) (cuda:0..cuda:{found - 1})")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise DeviceError(f"--device {name}: Apple MPS is not available here; use --device cpu (or auto)")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise DeviceError(f"--device {name}: geotool runs on cpu, cuda or mps, not {device.type}")
    return device


def spread_over_gpus(device, slot: int | None):
    """A CUDA device without an index, on a machine with several GPUs, becomes ``cuda:<slot mod count>``:
    the Dask workers of one node (slots 0, 1, ...) each take their own GPU. Anything else is kept."""
    import torch

    if slot is None or device.type != "cuda" or device.index is not None:
        return device
    count = torch.cuda.device_count()
    return torch.device(f"cuda:{slot % count}") if count > 1 else device

"""Window-size rules of the NIR networks, importable without torch (configs validate with them)."""

from __future__ import annotations


def window_multiple(arch: dict) -> int:
    """Window sides must be a multiple of this."""
    return 2 ** arch["depth"] if arch["generator"] == "pix2pix" else 32


def max_patch_layers(window: int) -> int:
    """The most stride-2 layers a :class:`PatchDiscriminator` can have on ``window``-px inputs: its two
    closing stride-1 convolutions need at least 3 px left."""
    return max(0, (window // 3).bit_length() - 1)  # the largest n with window // 2**n >= 3

"""pix2pix networks (Isola et al. 2017): a U-Net generator and a PatchGAN discriminator.

Both work on any window whose side is a multiple of ``2 ** depth`` (generator) pixels.
"""

from __future__ import annotations

import torch
from torch import nn

from geotool.models.shape_rules import max_patch_layers, window_multiple  # noqa: F401 - re-exported


NORMS = ("batch", "instance")


def _norm_layer(kind: str, channels: int) -> nn.Module:
    """BatchNorm (running statistics at inference) or InstanceNorm (each window's own statistics, pix2pix's
    batch-size-1 setting), both with a learned scale and shift."""
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    raise ValueError(f"unknown norm {kind!r}; use one of {', '.join(NORMS)}")


class _Down(nn.Module):
    def __init__(self, cin: int, cout: int, norm: str | None = "batch") -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(cin, cout, 4, 2, 1, bias=not norm)]
        if norm:
            layers.append(_norm_layer(norm, cout))
        layers.append(nn.LeakyReLU(0.2, inplace=True))
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class _Up(nn.Module):
    def __init__(self, cin: int, cout: int, dropout: bool, norm: str = "batch") -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), _norm_layer(norm, cout)]
        if dropout:
            layers.append(nn.Dropout(0.5))
        layers.append(nn.ReLU(inplace=True))
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class UNetGenerator(nn.Module):
    """The classic pix2pix U-Net: ``depth`` stride-2 convs down, transposed convs up, skip connections.

    Args:
        in_channels: input bands (3 for RGB).
        out_channels: output bands (1 for NIR).
        ngf: filters of the first layer (doubling up to ``8 * ngf``).
        depth: number of down-sampling steps (8 for 256-px windows in the paper; windows must be a
            multiple of ``2 ** depth``).
        dropout: dropout in the three innermost decoder blocks (pix2pix's noise source).
        norm: ``batch`` or ``instance`` normalisation in the inner blocks.

    Output is ``tanh`` in [-1, 1] (unit range mapped by ``2u - 1``).
    """

    def __init__(self, in_channels: int = 3, out_channels: int = 1, ngf: int = 64, depth: int = 8, dropout: bool = True,
                 norm: str = "batch") -> None:
        super().__init__()
        if depth < 2:
            raise ValueError("depth must be at least 2")
        self.depth = depth
        chans = [min(ngf * 2**i, ngf * 8) for i in range(depth)]
        self.downs = nn.ModuleList()
        cin = in_channels
        for i, c in enumerate(chans):
            self.downs.append(_Down(cin, c, norm=norm if 0 < i < depth - 1 else None))
            cin = c
        self.ups = nn.ModuleList()
        for i in reversed(range(depth - 1)):
            up_in = chans[i + 1] if i == depth - 2 else chans[i + 1] * 2
            self.ups.append(_Up(up_in, chans[i], dropout=dropout and i >= depth - 4, norm=norm))
        self.final = nn.Sequential(nn.ConvTranspose2d(chans[0] * 2, out_channels, 4, 2, 1), nn.Tanh())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for down in self.downs:
            x = down(x)
            skips.append(x)
        x = skips.pop()
        for up in self.ups:
            x = up(x)
            x = torch.cat([x, skips.pop()], dim=1)
        return self.final(x)


class PatchDiscriminator(nn.Module):
    """PatchGAN: classifies overlapping patches of ``cat(condition, image)`` as real or fake (logits).

    Args:
        in_channels: condition + image bands (3 RGB + 1 NIR = 4).
        ndf: filters of the first layer.
        n_layers: stride-2 layers (3 gives the 70 x 70 receptive field of pix2pix).
    """

    def __init__(self, in_channels: int = 4, ndf: int = 64, n_layers: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_channels, ndf, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True)]
        mult = 1
        for n in range(1, n_layers):
            prev, mult = mult, min(2**n, 8)
            layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * mult), nn.LeakyReLU(0.2, inplace=True)]
        prev, mult = mult, min(2**n_layers, 8)
        layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, 1, 1, bias=False), nn.BatchNorm2d(ndf * mult), nn.LeakyReLU(0.2, inplace=True)]
        layers.append(nn.Conv2d(ndf * mult, 1, 4, 1, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, condition: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([condition, image], dim=1))


class SmpGenerator(nn.Module):
    """An smp ``Unet`` with a chosen encoder, ``tanh`` output like :class:`UNetGenerator`.

    Args:
        encoder: smp encoder name (e.g. ``resnet18``).
        encoder_weights: ``None`` (random init) or a local state-dict file for the encoder (no downloads).
    """

    def __init__(self, in_channels: int = 3, out_channels: int = 1, encoder: str = "resnet18", encoder_weights: str | None = None) -> None:
        super().__init__()
        import segmentation_models_pytorch as smp

        self.net = smp.Unet(encoder_name=encoder, encoder_weights=None, in_channels=in_channels, classes=out_channels)
        if encoder_weights:
            from geotool.models.encoder_weights import load_encoder_weights

            load_encoder_weights(self.net.encoder, encoder_weights, encoder)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.net(x))


def build_generator(arch: dict, encoder_weights: str | None = None) -> nn.Module:
    """Build the generator described by ``arch`` (as stored in the checkpoint). ``encoder_weights``: a
    local state-dict for an smp encoder."""
    if arch["generator"] == "pix2pix":
        return UNetGenerator(arch["in_channels"], 1, arch["ngf"], arch["depth"], arch.get("dropout", True),
                              arch.get("norm", "batch"))
    if arch["generator"] == "smp":
        return SmpGenerator(arch["in_channels"], 1, arch["encoder"], encoder_weights)
    raise ValueError(f"unknown generator {arch['generator']!r}")



"""Masked losses for the NIR GAN: L1, SSIM, NDVI consistency, adversarial (vanilla or LSGAN)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` over pixels where ``mask`` (broadcastable, 0/1) is set."""
    mask = mask.expand_as(values).to(values.dtype)
    return (values * mask).sum() / mask.sum().clamp_min(1.0)


def l1(fake: torch.Tensor, real: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Masked mean absolute error (unit scale)."""
    return masked_mean((fake - real).abs(), mask)


def ssim_map(x: torch.Tensor, y: torch.Tensor, window: int = 7, data_range: float = 1.0) -> torch.Tensor:
    """Local SSIM with a uniform ``window`` x ``window`` kernel (same size as the input, padded by reflection)."""
    pad = window // 2
    xp, yp = F.pad(x, [pad] * 4, mode="reflect"), F.pad(y, [pad] * 4, mode="reflect")
    mu_x, mu_y = F.avg_pool2d(xp, window, 1), F.avg_pool2d(yp, window, 1)
    sxx = F.avg_pool2d(xp * xp, window, 1) - mu_x**2
    syy = F.avg_pool2d(yp * yp, window, 1) - mu_y**2
    sxy = F.avg_pool2d(xp * yp, window, 1) - mu_x * mu_y
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    return ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2))


def ssim_loss(fake: torch.Tensor, real: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """1 - masked mean SSIM."""
    return 1.0 - masked_mean(ssim_map(fake, real), mask)


def ndvi(nir: torch.Tensor, red: torch.Tensor) -> torch.Tensor:
    """NDVI from unit-scaled NIR and red."""
    return (nir - red) / (nir + red).clamp_min(1e-3)


def ndvi_loss(fake: torch.Tensor, real: torch.Tensor, red: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Masked L1 between the NDVI of generated and real NIR."""
    return masked_mean((ndvi(fake, red) - ndvi(real, red)).abs(), mask)


def adversarial(logits: torch.Tensor, target_real: bool, mode: str, mask: torch.Tensor) -> torch.Tensor:
    """Patch-wise GAN loss, weighted by the fraction of valid pixels under each patch."""
    weight = F.adaptive_avg_pool2d(mask.to(logits.dtype), logits.shape[-2:])
    target = torch.ones_like(logits) if target_real else torch.zeros_like(logits)
    if mode == "lsgan":
        loss = (logits - target) ** 2
    else:
        loss = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    return (loss * weight).sum() / weight.sum().clamp_min(1e-6)

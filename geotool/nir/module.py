"""The Lightning module: pix2pix conditional GAN with manual optimisation (generator alone when gan_weight is 0)."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch

from geotool.models.pix2pix import PatchDiscriminator, build_generator
from geotool.nir import losses
from geotool.training.schedule import make_scheduler


def _ema_update(decay: float):
    """``AveragedModel`` update with TensorFlow's warm-up: decay ``min(decay, (1 + n) / (10 + n))`` after
    ``n`` updates, so that the average forgets the random initial weights within short runs too."""

    @torch.no_grad()
    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], n_averaged: torch.Tensor) -> None:
        n = n_averaged.to(torch.float64)  # stays on the device: no host sync per step
        d = ((1 + n) / (10 + n)).clamp(max=decay)
        for a, c in zip(averaged, current):
            if torch.is_floating_point(a):
                a.lerp_(c, (1 - d).to(a.dtype))
            else:  # integer buffers (BatchNorm's batch counter) keep the live value
                a.copy_(c)

    return update


class NIRGan(L.LightningModule):
    """Generator (RGB -> NIR) and PatchGAN discriminator conditioned on RGB.

    Networks see ``2u - 1`` of unit-scaled values. Generator loss: ``gan_weight * adv + l1_weight * L1
    + ssim_weight * (1 - SSIM) + ndvi_weight * |NDVI_fake - NDVI_real|``, all masked by valid pixels.
    With ``gan_weight == 0`` the discriminator is neither built nor trained (an L1 regression baseline).
    Both optimisers follow ``lr_schedule`` over ``total_steps`` generator steps. With ``ema > 0``,
    validation scores and export take an exponential moving average of the generator's weights and
    buffers (decay ``ema`` per step, warmed up as in :func:`_ema_update`); training steps use the live
    generator.
    """

    def __init__(self, arch: dict[str, Any], loss: dict[str, Any], lr: float = 2e-4, beta1: float = 0.5,
                 encoder_weights: str | None = None, lr_schedule: str = "constant", total_steps: int = 1,
                 ema: float = 0.0) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.automatic_optimization = False
        self.arch, self.loss_cfg = arch, loss
        self.generator = build_generator(arch, encoder_weights)
        self.generator_ema = None
        if ema > 0:
            from torch.optim.swa_utils import AveragedModel

            self.generator_ema = AveragedModel(self.generator, multi_avg_fn=_ema_update(ema), use_buffers=True)
            self.generator_ema.requires_grad_(False)  # updated by averaging only; DDP must not wait for its gradients
        self.use_gan = float(loss["gan_weight"]) > 0
        self.discriminator = PatchDiscriminator(arch["in_channels"] + 1, arch["ndf"], arch["d_layers"]) if self.use_gan else None
        self.val_outputs: list = []

    @property
    def exported_generator(self) -> torch.nn.Module:
        """The generator validated and exported: the weight average when ``ema > 0``, else the live one."""
        return self.generator_ema.module if self.generator_ema is not None else self.generator

    def forward(self, rgb_unit: torch.Tensor) -> torch.Tensor:
        """Unit RGB ``(B,3,H,W)`` -> unit NIR ``(B,1,H,W)``: the live generator while training, the exported
        one in eval mode."""
        net = self.generator if self.training else self.exported_generator
        return (net(rgb_unit * 2 - 1) + 1) / 2

    def configure_optimizers(self):
        nets = [self.generator] + ([self.discriminator] if self.use_gan else [])
        opts = [torch.optim.Adam(n.parameters(), lr=self.hparams.lr, betas=(self.hparams.beta1, 0.999)) for n in nets]
        return opts, [make_scheduler(o, self.hparams.lr_schedule, self.hparams.total_steps) for o in opts]

    def _step_schedules(self) -> None:
        schedulers = self.lr_schedulers()
        for sched in schedulers if isinstance(schedulers, list) else [schedulers]:
            sched.step()

    def _content_loss(self, fake, real, rgb, mask):
        c = self.loss_cfg
        total = c["l1_weight"] * losses.l1(fake, real, mask)
        if c.get("ssim_weight", 0):
            total = total + c["ssim_weight"] * losses.ssim_loss(fake, real, mask)
        if c.get("ndvi_weight", 0):
            total = total + c["ndvi_weight"] * losses.ndvi_loss(fake, real, rgb[:, :1], mask)
        return total

    def training_step(self, batch, batch_idx):
        rgb, nir, valid = batch
        mask = valid.float()
        opts = self.optimizers()
        opt_g, opt_d = (opts[0], opts[1]) if isinstance(opts, (list, tuple)) else (opts, None)
        fake = self(rgb)
        cond, fake_s, real_s = rgb * 2 - 1, fake * 2 - 1, nir * 2 - 1
        if self.use_gan:
            mode = self.loss_cfg["gan_mode"]
            d_real = self.discriminator(cond, real_s)
            d_fake = self.discriminator(cond, fake_s.detach())
            loss_d = 0.5 * (losses.adversarial(d_real, True, mode, mask) + losses.adversarial(d_fake, False, mode, mask))
            opt_d.zero_grad()
            self.manual_backward(loss_d)
            opt_d.step()
            self.log("train_loss_d", loss_d, on_step=False, on_epoch=True, sync_dist=True)
        content = self._content_loss(fake, nir, rgb, mask)
        loss_g = content
        if self.use_gan:
            adv = losses.adversarial(self.discriminator(cond, fake_s), True, self.loss_cfg["gan_mode"], mask)
            loss_g = loss_g + self.loss_cfg["gan_weight"] * adv
            self.log("train_adv", adv, on_step=False, on_epoch=True, sync_dist=True)
        opt_g.zero_grad()
        self.manual_backward(loss_g)
        opt_g.step()
        if self.generator_ema is not None:
            self.generator_ema.update_parameters(self.generator)
        self.log("train_loss_g", loss_g, on_step=False, on_epoch=True, prog_bar=True, sync_dist=True)
        self._step_schedules()
        self.log("train_l1", losses.l1(fake.detach(), nir, mask), on_step=False, on_epoch=True, sync_dist=True)

    def _window_metrics(self, rgb, nir, valid) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(generated NIR, masked MAE, masked mean SSIM) of one batch of windows, unit scale."""
        fake = self(rgb)
        mask = valid.float()
        return fake, losses.l1(fake, nir, mask), losses.masked_mean(losses.ssim_map(fake, nir), mask)

    @torch.no_grad()
    def score(self, loader) -> dict[str, float]:
        """Masked MAE and SSIM (unit scale) of the generator as it stands over ``loader``'s windows, each
        batch weighted by its size as ``validation_step`` logs them: the figures of the weights exported."""
        was_training, device = self.training, next(self.generator.parameters()).device
        self.eval()
        sums, count = {"mae": 0.0, "ssim": 0.0}, 0
        for batch in loader:
            _, mae, ssim = self._window_metrics(*(t.to(device) for t in batch))
            sums["mae"] += float(mae) * len(batch[0])
            sums["ssim"] += float(ssim) * len(batch[0])
            count += len(batch[0])
        self.train(was_training)
        return {k: v / max(count, 1) for k, v in sums.items()}

    def validation_step(self, batch, batch_idx):
        rgb, nir, valid = batch
        fake, mae, ssim = self._window_metrics(rgb, nir, valid)
        self.log("val_mae", mae, on_epoch=True, prog_bar=True, batch_size=rgb.shape[0], sync_dist=True)
        self.log("val_ssim", ssim, on_epoch=True, batch_size=rgb.shape[0], sync_dist=True)
        if batch_idx == 0:
            self.val_outputs = [(rgb[:4].cpu(), nir[:4].cpu(), fake[:4].detach().cpu(), valid[:4].cpu())]

"""The Lightning module: an smp network, a sum of smp losses, IoU / F1 on validation windows."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch

from geotool.segmentation.model import build_loss, build_model
from geotool.training.schedule import make_scheduler


class SegmentationModule(L.LightningModule):
    """Multiclass segmentation on normalised windows ``(B, C, H, W)`` with targets ``(B, H, W)``.

    Logs ``train_loss``, ``val_loss``, ``val_miou`` (mean IoU over classes present), ``val_f1_fg``
    (F1 of all foreground classes against background) per epoch. AdamW's rate follows ``lr_schedule`` over
    ``total_steps`` optimiser steps.
    """

    def __init__(self, arch: dict[str, Any], loss: list[str], ignore_index: int, lr: float, encoder_weights: str | None = None,
                 lr_schedule: str = "constant", total_steps: int = 1) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["encoder_weights"])
        self.net = build_model(arch["arch"], arch["encoder"], arch["in_channels"], arch["classes"], encoder_weights,
                               arch.get("options"))
        self.loss_fn = build_loss(loss, arch["classes"], ignore_index)
        self.ignore_index = ignore_index
        self.n_classes = arch["classes"]
        self.val_conf = torch.zeros(self.n_classes, self.n_classes, dtype=torch.long)
        self.val_outputs: list = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def configure_optimizers(self):
        hp = self.hparams
        opt = torch.optim.AdamW(self.parameters(), lr=hp.lr)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": make_scheduler(opt, hp.lr_schedule, hp.total_steps),
                                                   "interval": "step"}}

    def training_step(self, batch, batch_idx):
        x, y, _ = batch
        loss = self.loss_fn(self(x), y)
        self.log("train_loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=x.shape[0], sync_dist=True)
        return loss

    def on_validation_epoch_start(self) -> None:
        self.val_conf = torch.zeros(self.n_classes, self.n_classes, dtype=torch.long)
        self.val_outputs = []

    def validation_step(self, batch, batch_idx):
        x, y, valid = batch
        logits = self(x)
        self.log("val_loss", self.loss_fn(logits, y), on_epoch=True, batch_size=x.shape[0], sync_dist=True)
        pred = logits.argmax(1)
        keep = y != self.ignore_index
        idx = y[keep] * self.n_classes + pred[keep]
        self.val_conf += torch.bincount(idx.cpu(), minlength=self.n_classes**2).reshape(self.n_classes, self.n_classes)
        if batch_idx == 0:
            self.val_outputs = [(x.detach().cpu(), y.detach().cpu(), pred.detach().cpu(), valid.detach().cpu())]

    def on_validation_epoch_end(self) -> None:
        conf = self.val_conf.double()
        tp = conf.diag()
        union = conf.sum(0) + conf.sum(1) - tp
        present = conf.sum(1) > 0
        iou = torch.where(union > 0, tp / union.clamp(min=1), torch.zeros_like(tp))
        miou = iou[present].mean() if present.any() else torch.tensor(0.0)
        fg_tp = conf[1:, 1:].sum()
        fg_fp = conf[0, 1:].sum()
        fg_fn = conf[1:, 0].sum()
        f1 = 2 * fg_tp / (2 * fg_tp + fg_fp + fg_fn).clamp(min=1)
        self.log("val_miou", miou.float(), sync_dist=True)
        self.log("val_f1_fg", f1.float(), sync_dist=True)

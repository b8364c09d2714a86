"""Albumentations pipeline for training windows (normalised image, class mask, validity)."""

from __future__ import annotations

import numpy as np


def build_augment(cfg, ignore_index: int):
    """``(image (C,H,W), mask (H,W), valid (H,W), rng) -> same``, or None when every option is off.

    Flips and rot90 are exact; brightness/contrast acts on normalised values (std units); scale/rotate
    fills new pixels with ``ignore_index`` labels and marks them invalid. Seeded from ``rng``.
    """
    import albumentations as A

    ops = []
    if cfg.flips:
        ops += [A.HorizontalFlip(p=0.5), A.VerticalFlip(p=0.5)]
    if cfg.rot90:
        ops.append(A.RandomRotate90(p=0.5))
    if cfg.brightness_contrast > 0:
        ops.append(A.RandomBrightnessContrast(cfg.brightness_contrast, cfg.brightness_contrast, p=0.5))
    if cfg.scale_rotate > 0:
        ops.append(A.Affine(scale=(0.9, 1.1), rotate=(-15, 15), fill=0, fill_mask=ignore_index, p=cfg.scale_rotate))
    if not ops:
        return None
    return AlbumentationsAugment(A.Compose(ops, additional_targets={"invalid": "mask"}), ignore_index)


class AlbumentationsAugment:
    """A picklable callable (DataLoader workers may spawn) applying one albumentations pipeline."""

    def __init__(self, compose, ignore_index: int) -> None:
        self.compose, self.ignore_index = compose, ignore_index

    def __call__(self, image: np.ndarray, mask: np.ndarray, valid: np.ndarray, rng: np.random.Generator):
        self.compose.set_random_seed(int(rng.integers(2**31 - 1)))
        out = self.compose(image=np.ascontiguousarray(image.transpose(1, 2, 0)), mask=mask.astype(np.int32),
                           invalid=(~valid).astype(np.uint8))
        invalid = out["invalid"] > 0
        m = out["mask"].astype(np.int64)
        m[invalid] = self.ignore_index
        return np.ascontiguousarray(out["image"].transpose(2, 0, 1)), m, ~invalid

"""smp model and loss factories (no network: encoder weights are random or from a local file)."""

from __future__ import annotations

from geotool.errors import ConfigError

#: smp architecture names accepted by ``arch`` (case-insensitive aliases allowed).
ARCH_ALIASES = {"unet++": "UnetPlusPlus", "deeplabv3+": "DeepLabV3Plus"}


def architectures() -> list[str]:
    """Every architecture segmentation-models-pytorch offers."""
    import segmentation_models_pytorch as smp

    return sorted(cls.__name__ for cls in smp.MODEL_ARCHITECTURES_MAPPING.values())


def build_model(arch: str, encoder: str, in_channels: int, classes: int, encoder_weights: str | None = None,
                options: dict | None = None):
    """An smp model with random weights, optionally loading a local encoder state dict.

    ``options``: extra keyword arguments of the smp architecture (e.g. ``encoder_depth``,
    ``decoder_channels``), stored in the checkpoint so ``predict`` rebuilds the same network.
    """
    import segmentation_models_pytorch as smp

    mapping = smp.MODEL_ARCHITECTURES_MAPPING
    known = {key.lower(): key for key in mapping}
    known.update({cls.__name__.lower(): key for key, cls in mapping.items()})
    key = known.get(ARCH_ALIASES.get(arch.lower(), arch).lower())
    if key is None:
        raise ConfigError(f"unknown architecture {arch!r}; choose one of {', '.join(architectures())}")
    _check_options(mapping[key], options or {})
    try:
        model = smp.create_model(arch=key, encoder_name=encoder, encoder_weights=None, in_channels=in_channels, classes=classes,
                                 **(options or {}))
    except (KeyError, ValueError, TypeError, RuntimeError) as exc:
        raise ConfigError(f"cannot build {arch} with encoder {encoder!r}: {str(exc).splitlines()[0][:200]}") from None
    if encoder_weights:
        from geotool.models.encoder_weights import load_encoder_weights

        load_encoder_weights(model.encoder, encoder_weights, encoder)
    return model


def _check_options(cls, options: dict) -> None:
    """Refuse option names the architecture does not declare (smp would pass them on silently)."""
    import inspect

    reserved = {"self", "encoder_name", "encoder_weights", "in_channels", "classes", "kwargs"}
    allowed = set(inspect.signature(cls.__init__).parameters) - reserved
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ConfigError(f"model_options {', '.join(unknown)} are not arguments of smp {cls.__name__}; "
                          f"choose from {', '.join(sorted(allowed))}")


def build_loss(names: list[str], classes: int, ignore_index: int):
    """Sum of smp losses on multiclass logits ``(B, K, H, W)`` and targets ``(B, H, W)``."""
    import segmentation_models_pytorch as smp
    import torch

    parts = []
    for n in names:
        if n == "dice":
            parts.append(smp.losses.DiceLoss("multiclass", ignore_index=ignore_index))
        elif n == "jaccard":
            parts.append(_masked(smp.losses.JaccardLoss("multiclass"), ignore_index))
        elif n == "tversky":
            parts.append(smp.losses.TverskyLoss("multiclass", ignore_index=ignore_index))
        elif n == "focal":
            parts.append(smp.losses.FocalLoss("multiclass", ignore_index=ignore_index))
        elif n == "lovasz":
            parts.append(smp.losses.LovaszLoss("multiclass", ignore_index=ignore_index))
        elif n == "ce":
            parts.append(torch.nn.CrossEntropyLoss(ignore_index=ignore_index))
        elif n == "bce":
            parts.append(_BinaryCE(ignore_index))
        else:
            raise ConfigError(f"unknown loss {n!r}")

    def total(logits, target):
        return sum(p(logits, target) for p in parts)

    return total


class _BinaryCE:
    """Binary cross-entropy (smp.losses.SoftBCEWithLogitsLoss) on the foreground logit margin (2 classes)."""

    def __init__(self, ignore_index: int) -> None:
        import segmentation_models_pytorch as smp

        self.ignore_index = ignore_index
        self.fn = smp.losses.SoftBCEWithLogitsLoss(ignore_index=ignore_index)

    def __call__(self, logits, target):
        margin = logits[:, 1] - logits[:, 0]
        return self.fn(margin, target.float())


def _masked(loss, ignore_index):
    def fn(logits, target):
        keep = (target != ignore_index).unsqueeze(1)
        t = target.clone()
        t[~keep[:, 0]] = 0
        return loss(logits * keep, t)

    return fn

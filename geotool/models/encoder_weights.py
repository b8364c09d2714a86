"""Local pretrained encoder weights for smp encoders, in the key layouts they are published in.

A state dict saved from torchvision (``resnet18().state_dict()``), from smp (``model.encoder.state_dict()``) or
from a whole smp/timm/Lightning model (keys under ``encoder.``, ``model.``, ``backbone.`` or ``module.``) is
matched to the encoder's parameter names; classifier heads the encoder does not have (``fc.``, ``classifier.``,
``head.``) are ignored. Anything that does not cover every encoder parameter with the right shape is refused:
a partly loaded encoder trains, but not from the weights the user meant.
"""

from __future__ import annotations

from pathlib import Path

from geotool.errors import CheckpointError

PREFIXES = ("", "encoder.", "model.", "backbone.", "module.", "net.encoder.", "model.encoder.")
HEADS = ("fc.", "classifier.", "head.", "last_linear.")


def load_encoder_weights(encoder, path: str | Path, name: str, option: str = "--encoder-weights") -> int:
    """Load the state dict at ``path`` into the smp ``encoder`` (named ``name`` in messages); returns the
    number of tensors loaded. Raises CheckpointError when the file does not fit."""
    import torch

    from geotool.io.checkpoint import load_state_dict

    state = load_state_dict(path, option)
    state = state.get("state_dict", state) if isinstance(state, dict) else state
    own = encoder.state_dict()
    best: dict = {}
    for prefix in PREFIXES:
        keys = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix) and hasattr(v, "shape")}
        found = {k: v for k, v in keys.items() if k in own}
        if len(found) > len(best):
            best = found
    if not best:
        raise CheckpointError(f"{option} {path} shares no parameter name with encoder {name}; give a state dict saved "
                              f"from a {name} (torchvision, smp or timm)")
    wrong = [k for k, v in best.items() if tuple(v.shape) != tuple(own[k].shape)]
    if wrong:
        k = wrong[0]
        raise CheckpointError(f"{option} {path} does not fit encoder {name}: {k} is {tuple(best[k].shape)}, the encoder's "
                              f"{tuple(own[k].shape)} (another architecture, or another number of input bands?)")
    missing = [k for k in own if k not in best and not k.endswith("num_batches_tracked")]
    if missing:
        raise CheckpointError(f"{option} {path} covers {len(own) - len(missing)} of {len(own)} tensors of encoder {name} "
                              f"(missing {missing[0]}, ...); give the state dict of a whole {name}")
    merged = {**own, **{k: v.to(own[k].dtype) for k, v in best.items()}}
    torch.nn.Module.load_state_dict(encoder, merged, strict=True)  # smp's own override drops the result
    return len(best)

"""Configs: pydantic models filled from YAML files, then overridden by command-line flags.

Every command resolves its settings with :func:`load_config` and records them, with the package version,
the seed and the SHA-256 of every input, in a JSON sidecar next to its output (:func:`write_sidecar`).
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from geotool import __version__
from geotool.errors import ConfigError

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"

M = TypeVar("M", bound=BaseModel)


class GeotoolConfig(BaseModel):
    """Base for command configs: unknown keys are errors, so a typo in YAML is caught."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def _set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    node = data
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"cannot set {key}: {part} is not a section")
    node[parts[-1]] = value


def load_config(
    model: type[M],
    path: str | os.PathLike | None = None,
    overrides: Mapping[str, Any] | None = None,
    preset: str | None = None,
) -> M:
    """Build a validated config: preset YAML from ``configs/``, then ``path``, then flag overrides.

    Args:
        model: the pydantic config class.
        path: a user's YAML file (optional).
        overrides: flag values keyed by field name (dotted for nested sections); ``None`` values are
            flags the user did not give and are ignored.
        preset: name of a YAML file in the package's ``configs/`` folder (e.g. ``"buildings"``).
    """
    from geotool.io.files import read_yaml

    data: dict[str, Any] = {}
    sources = []
    if preset is not None:
        preset_path = CONFIG_DIR / f"{preset}.yaml"
        if not preset_path.exists():
            available = sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))
            raise ConfigError(f"no preset {preset!r}; available: {', '.join(available)}")
        _deep_update(data, read_yaml(preset_path))
        sources.append(str(preset_path))
    if path is not None:
        _deep_update(data, read_yaml(path))
        sources.append(str(path))
    for key, value in (overrides or {}).items():
        if value is not None:
            _set_dotted(data, key, value)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "config"
        if err["type"] == "missing":
            raise ConfigError(f"missing setting {where}: give it as a flag (--{where.replace('_', '-')}) or in the config file") from None
        origin = f" (from {', '.join(sources)} and flags)" if sources else ""
        message = err["msg"].removeprefix("Value error, ")
        raise ConfigError(f"invalid setting {where}{origin}: {message}") from None


def _deep_update(base: dict[str, Any], new: Mapping[str, Any]) -> None:
    for key, value in new.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _deep_update(base[key], value)
        else:
            base[key] = value


def sidecar_path(output: str | os.PathLike) -> Path:
    """``points.gpkg`` -> ``points.gpkg.json``; a folder ``run/`` -> ``run/geotool.json``."""
    output = Path(output)
    return output / "geotool.json" if output.is_dir() else output.with_name(output.name + ".json")


def write_sidecar(
    output: str | os.PathLike,
    command: str,
    config: BaseModel | Mapping[str, Any],
    inputs: Iterable[str | os.PathLike] = (),
    seed: int | None = None,
    results: Mapping[str, Any] | None = None,
) -> Path:
    """Write the provenance sidecar: command, version, time, seed, resolved config, input hashes, results."""
    from geotool.io.files import provenance, write_json

    resolved = config.model_dump(mode="json") if isinstance(config, BaseModel) else dict(config)
    record = {
        "command": command,
        "geotool_version": __version__,
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "seed": seed,
        "config": resolved,
        "inputs": provenance(inputs),
    }
    if results:
        record["results"] = dict(results)
    return write_json(sidecar_path(output), record)

"""Configs: pydantic models filled from YAML files, then overridden by command-line flags.

Every command resolves its settings with :func:`load_config` and records them, with the package version,
the seed and the SHA-256 of every input, in a JSON sidecar next to its output (:func:`write_sidecar`).
"""

from __future__ import annotations

import logging
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from geotool import __version__
from geotool.errors import ConfigError

#: Preset YAML files ship inside the package (``geotool/configs/``), so a wheel install has them too.
PRESET_PACKAGE = "geotool"
PRESET_FOLDER = "configs"

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
    """Build a validated config: a packaged preset, then ``path``, then flag overrides.

    Args:
        model: the pydantic config class.
        path: a user's YAML file (optional).
        overrides: flag values keyed by field name (dotted for nested sections); ``None`` values are
            flags the user did not give and are ignored.
        preset: name of a preset shipped in ``geotool/configs/`` (e.g. ``"buildings"``).
    """
    data: dict[str, Any] = {}
    sources = []
    if preset is not None:
        _deep_update(data, read_preset(preset))
        sources.append(f"preset {preset}")
    if path is not None:
        _deep_update(data, read_yaml_or_preset(path))
        sources.append(str(path))
    for key, value in (overrides or {}).items():
        if value is not None:
            _set_dotted(data, key, value)
    try:
        resolved = model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "config"
        if err["type"] == "missing":
            raise ConfigError(f"missing setting {where}: give it as a flag ({flag_name(where)}) or in the config file") from None
        message = err["msg"].removeprefix("Value error, ")
        if not err["loc"]:  # a rule across settings (a model validator): its message names the flags itself
            raise ConfigError(message) from None
        origin = f", from {', '.join(sources)} or flags" if sources else ""
        raise ConfigError(f"invalid setting {where} ({flag_name(where)}{origin}): {message}") from None
    logging.getLogger("geotool.config").debug("resolved %s: %s", model.__name__, resolved.model_dump_json())
    return resolved


def flag_name(setting: str) -> str:
    """The command-line spelling of a setting: ``n`` -> ``-n``, ``batch_size`` -> ``--batch-size``,
    ``shadows.sun_azimuth`` -> ``--sun-azimuth``."""
    leaf = setting.rsplit(".", 1)[-1]
    return f"-{leaf}" if len(leaf) == 1 else f"--{leaf.replace('_', '-')}"


def preset_names() -> list[str]:
    """Names of the presets shipped with the package (``buildings``, ``forest``, ``nir``, ``oba``, ``soil``)."""
    from importlib.resources import files

    folder = files(PRESET_PACKAGE) / PRESET_FOLDER
    return sorted(p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml"))


def read_preset(name: str) -> dict[str, Any]:
    """The settings of a packaged preset, read through ``importlib.resources`` (works from a wheel or a zip)."""
    from importlib.resources import as_file, files

    from geotool.io.files import read_yaml

    names = preset_names()
    if name not in names:
        raise ConfigError(f"no preset {name!r}; available: {', '.join(names)}")
    with as_file(files(PRESET_PACKAGE) / PRESET_FOLDER / f"{name}.yaml") as path:
        return read_yaml(path)


def read_yaml_or_preset(path: str | os.PathLike) -> dict[str, Any]:
    """A user's YAML file, or, when no such file exists and ``path`` names a preset (``oba``), that preset."""
    from geotool.io.files import read_yaml

    if not Path(path).exists() and str(path) in preset_names():
        return read_preset(str(path))
    return read_yaml(path)


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

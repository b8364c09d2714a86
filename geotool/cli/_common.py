"""Shared CLI machinery: run state (debug/quiet), error handling, option parsing helpers.

Only light imports here: ``geotool --help`` must not import torch, rasterio or geopandas.
"""

from __future__ import annotations

import functools
import logging
import sys
import traceback
from pathlib import Path
from typing import Any, Callable, TypeVar

import typer

from geotool.errors import ConfigError, GeotoolError
from geotool.run_state import STATE  # noqa: F401 - the CLI modules import STATE from here

F = TypeVar("F", bound=Callable[..., Any])


def configure_logging(verbose: int, log_file: Path | None) -> None:
    """Log to stderr (WARNING, INFO with -v, DEBUG with -vv) and optionally to a file (always DEBUG)."""
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    root = logging.getLogger("geotool")
    root.handlers.clear()
    root.setLevel(logging.DEBUG)
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(level)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    if log_file is not None:
        file_handler = logging.FileHandler(log_file)
        file_handler.setLevel(logging.DEBUG)
        file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(file_handler)


def handle_errors(fn: F) -> F:
    """Turn a GeotoolError into one line on stderr and exit 2; any other exception exits 1.

    With ``--debug`` the traceback is printed too.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except GeotoolError as exc:
            if STATE.debug:
                traceback.print_exc()
            message = " ".join(str(exc).split())
            typer.echo(f"error: {message}", err=True)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(130) from None
        except Exception as exc:  # noqa: BLE001 - the last line of defence: a bug, exit 1
            if STATE.debug:
                traceback.print_exc()
            typer.echo(
                f"error: unexpected {type(exc).__name__}: {exc} "
                "(this is a bug in geotool; rerun with --debug for the traceback)",
                err=True,
            )
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def parse_int_list(text: str | None, option: str) -> list[int] | None:
    """Parse ``"1,2,3"`` into ``[1, 2, 3]``; ``None`` stays ``None``."""
    if text is None or text == "":
        return None
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ConfigError(f"{option} takes comma-separated integers like 1,2,3, not {text!r}") from None


def parse_band_list(text: str | None, option: str = "--bands") -> list[int | str] | None:
    """Parse a band selection: 1-based indices or band descriptions, comma-separated."""
    if text is None or text == "":
        return None
    bands: list[int | str] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        bands.append(int(part) if part.lstrip("-").isdigit() else part)
    if not bands:
        raise ConfigError(f"{option} is empty; give band numbers (1-based) or descriptions, e.g. 1,2,3")
    return bands


def parse_str_list(text: str | None) -> list[str] | None:
    """Parse ``"a,b"`` into ``["a", "b"]``; ``None`` stays ``None``."""
    if text is None or text == "":
        return None
    return [part.strip() for part in text.split(",") if part.strip()]

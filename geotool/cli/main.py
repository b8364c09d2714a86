"""The ``geotool`` entry point: global options and command registration.

Each command module registers its commands with ``register(app)``. Command modules import only
typer and the standard library at top level; pipelines (and torch) are imported inside the command
body, so ``geotool --help`` and the soil commands start quickly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from geotool import __version__
from geotool.cli._common import STATE, configure_logging

app = typer.Typer(
    name="geotool",
    help="Applied remote sensing and soil work on real GeoTIFFs and vectors.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"geotool {__version__}")
        raise typer.Exit()


@app.callback()
def _global_options(
    version: Annotated[
        Optional[bool],
        typer.Option("--version", callback=_version_callback, is_eager=True, help="Print the version and exit."),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks on errors.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or summaries.")] = False,
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, help="More logging (-v info, -vv debug).")] = 0,
    log_file: Annotated[
        Optional[Path], typer.Option("--log-file", help="Also write a debug log to this file (batch runs).")
    ] = None,
) -> None:
    """Applied remote sensing and soil work on real GeoTIFFs and vectors."""
    STATE.debug = debug
    STATE.quiet = quiet
    STATE.verbose = verbose
    STATE.log_file = log_file
    configure_logging(verbose, log_file)


# Command modules, in the order they appear in --help. Each module's register(app) adds its commands.
# (Imported here, after the app exists; each imports only typer and the standard library at top level.)
from geotool.cli import nir, oba, segmentation, soil  # noqa: E402

soil.register(app)
oba.register(app)
nir.register(app)
segmentation.register(app)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()

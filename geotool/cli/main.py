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
    """Console-script entry point. A mistyped command line (unknown option, missing argument, bad value) is
    one ``error:`` line and exit 2, like every other user mistake, instead of a framed usage panel."""
    import sys

    try:
        code = app(standalone_mode=False)
    except typer.Abort:  # Ctrl-C before a command started
        typer.echo("interrupted (Ctrl-C)", err=True)
        sys.exit(130)
    except typer.TyperException as exc:  # typer's own click exceptions: usage errors exit 2
        ctx = getattr(exc, "ctx", None)
        if type(exc).__name__ == "NoArgsIsHelpError":  # a command given without arguments: its help
            typer.echo(exc.format_message())
        else:
            hint = f"; see '{ctx.command_path} -h'" if ctx is not None and exc.exit_code == 2 else ""
            typer.echo(f"error: {exc.format_message().rstrip('.')}{hint}", err=True)
        sys.exit(exc.exit_code)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()

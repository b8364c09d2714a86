"""Command-line interface: thin typer commands that parse options, build a config and call one pipeline."""

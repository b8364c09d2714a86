"""``python -m geotool`` runs the command-line interface."""

from geotool.cli.main import main

if __name__ == "__main__":
    main()

"""``scenes.csv``: one row per scene of a batch (input, status, seconds, outputs, message)."""

from __future__ import annotations

import csv
import io
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from geotool.io.files import write_text

COLUMNS = ("input", "status", "seconds", "outputs", "message")


@dataclass
class SceneOutcome:
    """What happened to one scene. ``outputs`` are the scene's final files; ``result`` what the job returned."""

    input: str
    status: str
    seconds: float = 0.0
    outputs: list[str] = field(default_factory=list)
    message: str = ""
    result: Optional[dict[str, Any]] = None
    traceback: Optional[str] = None
    error: Optional[BaseException] = None

    def row(self) -> dict[str, str]:
        return {"input": self.input, "status": self.status, "seconds": f"{self.seconds:.3f}",
                "outputs": ";".join(self.outputs), "message": self.message}


def report_name(shard: tuple[int, int] | None) -> str:
    """``scenes.csv``; a shard writes its own file so array tasks sharing a folder never overwrite each other."""
    return "scenes.csv" if shard is None else f"scenes-{shard[0]}-of-{shard[1]}.csv"


class SceneReport:
    """Keeps the rows in scene order and rewrites the CSV atomically as scenes finish (at most once a
    ``interval`` seconds, and at the end), so a batch killed midway still leaves a true report."""

    def __init__(self, path: Path, scenes: list[str], interval: float = 2.0) -> None:
        self.path = path
        self._order = {s: i for i, s in enumerate(scenes)}
        self._rows: dict[str, SceneOutcome] = {}
        self._interval = interval
        self._written = 0.0

    def add(self, outcome: SceneOutcome) -> None:
        self._rows[outcome.input] = outcome
        if time.monotonic() - self._written >= self._interval:
            self.write()

    def write(self) -> None:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        for outcome in sorted(self._rows.values(), key=lambda o: self._order.get(o.input, len(self._order))):
            writer.writerow(outcome.row())
        write_text(self.path, buffer.getvalue())
        self._written = time.monotonic()


def read_report(path: str | Path) -> list[dict[str, str]]:
    """The rows of a ``scenes.csv`` (for tests and for scripts that resume by hand)."""
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))

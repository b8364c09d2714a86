"""Outputs on a read-only or full file system are the user's environment, not a bug: every command ends
with one ``error:`` line naming the output, exit code 2, and leaves no file (hidden or not) behind.

Real file systems when the tests run as root (tmpfs mounts: one read-only, one filled to the last page);
otherwise those cases are skipped and a simulated read-only folder (the OS refusing the temp file) runs."""

from __future__ import annotations

import errno
import os
import subprocess
import tempfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from geotool.cli.main import app
from geotool.io.atomic import atomic_path, unwritable_reason
from geotool.errors import OutputError
from test_bad_inputs import inputs  # noqa: F401 - the catalogue's tiny inputs, made once per module

runner = CliRunner()

# (id, command line with {name} for an input and {out} for the folder on the unwritable file system)
COMMANDS = [
    ("predict", "predict {seg} {scene} -o {out}"),
    ("generate-nir", "generate-nir {nir} {rgbn} -o {out}/nir.tif"),
    ("evaluate", "evaluate {classes} {labels} -o {out}/metrics.json"),
    ("evaluate-nir", "evaluate-nir {rgbn} {rgbn} -o {out}/metrics.json"),
    ("oba-augment", "oba-augment --images {scene} --labels {labels} -o {out} -n 1 --scene-size 48 --seed 0"),
    ("train-segmentation", "train-segmentation -i {scene} -l {labels} -o {out} --window 32 --batch-size 2 --max-steps 1 "
                           "--accelerator cpu"),
    ("train-nir", "train-nir {rgbn} -o {out} --max-steps 1 --window 16 --depth 3 --d-layers 2 --ngf 8 --ndf 8 --batch-size 2 "
                  "--accelerator cpu"),
    ("soil-sample", "soil-sample {slope} {ndvi} --resample bilinear -n 5 --seed 0 -o {out}/points.gpkg"),
    ("soil-evaluate", "soil-evaluate {kshen} -o {out}/table.csv --x-column LON --y-column LAT --crs EPSG:4326 "
                      "--properties Moisture_perc_10 -k 5 --repeats 2"),
]


def _mount(where: Path, options: str) -> bool:
    where.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)],
                          capture_output=True).returncode == 0


def _fill(folder: Path) -> None:
    """Take every free block of ``folder``'s file system."""
    fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)


@pytest.fixture(scope="session")
def mounts(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("real read-only and full file systems need root to mount a tmpfs")
    base = tmp_path_factory.mktemp("mounts")
    read_only, full = base / "read_only", base / "full"
    if not (_mount(read_only, "ro,size=1m") and _mount(full, "size=1m")):
        pytest.skip("tmpfs cannot be mounted here")
    _fill(full)
    yield {"read-only": read_only, "full": full}
    for m in (read_only, full):
        subprocess.run(["umount", "-l", str(m)], capture_output=True)


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.name != "filler")


@pytest.mark.parametrize("fs", ["read-only", "full"])
@pytest.mark.parametrize("command,line", COMMANDS, ids=[c[0] for c in COMMANDS])
def test_unwritable_output_is_one_line_exit_2_and_nothing_left(inputs, mounts, fs, command, line):  # noqa: F811
    out = mounts[fs]
    res = runner.invoke(app, [part.format(out=out, **inputs) for part in line.split()])
    # a note (WARNING) about what was adapted may come before the error
    lines = [line for line in res.stderr.strip().splitlines() if not line.startswith("WARNING ")]
    assert res.exit_code == 2, f"{command} on {fs}: exit {res.exit_code}\n{res.output}"
    assert len(lines) == 1 and lines[0].startswith("error: "), f"{command} on {fs}: {res.stderr}"
    assert "Traceback" not in res.output and "this is a bug" not in res.output
    said = lines[0].lower()
    assert ("read-only" in said) if fs == "read-only" else ("space" in said), lines[0]
    assert str(out) in lines[0], f"{command}: the line does not name the output: {lines[0]}"
    assert _files(out) == [], f"{command} on {fs} left {_files(out)}"


def test_a_folder_the_os_refuses_is_an_output_error_and_leaves_nothing(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(tmp_path))

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(OutputError, match="read-only"):
        with atomic_path(tmp_path / "out.tif"):
            pass
    assert list(tmp_path.iterdir()) == []


def test_a_writer_that_runs_out_of_space_is_an_output_error_and_leaves_nothing(tmp_path):
    with pytest.raises(OutputError, match="no space left"):
        with atomic_path(tmp_path / "out.tif") as tmp:
            tmp.write_bytes(b"partial")
            raise RuntimeError("PytorchStreamWriter failed writing file data/0: file write failed")
    assert list(tmp_path.iterdir()) == []


def test_a_bug_inside_an_atomic_write_stays_a_bug(tmp_path):
    with pytest.raises(ZeroDivisionError):
        with atomic_path(tmp_path / "out.tif"):
            1 / 0
    assert unwritable_reason(tmp_path, ZeroDivisionError()) is None


def test_a_permission_error_on_an_input_is_not_blamed_on_the_output_folder(tmp_path):
    elsewhere = OSError(errno.EACCES, "Permission denied", "/somewhere/else/input.tif")
    assert unwritable_reason(tmp_path, elsewhere) is None
    here = OSError(errno.EACCES, "Permission denied", str(tmp_path / "out.tif"))
    assert unwritable_reason(tmp_path, here) == "no permission to write there"

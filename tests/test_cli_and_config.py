"""The CLI shell (version, help, error handling) and config resolution/sidecars."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import typer
from pydantic import Field
from typer.testing import CliRunner

from geotool import __version__
from geotool.cli._common import handle_errors, parse_band_list, parse_int_list
from geotool.cli.main import app
from geotool.config import GeotoolConfig, load_config, sidecar_path, write_sidecar
from geotool.errors import ConfigError, InputFileError

runner = CliRunner()


def test_version_and_help():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"geotool {__version__}"
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0 and "Usage" in result.output


def test_python_dash_m_and_help_do_not_import_torch():
    code = ("import sys, runpy; sys.argv=['geotool','--help']\n"
            "try:\n    runpy.run_module('geotool', run_name='__main__')\nexcept SystemExit:\n    pass\n"
            "assert 'torch' not in sys.modules, 'geotool --help imported torch'\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Usage" in done.stdout


def _error_app(exc: Exception) -> typer.Typer:
    demo = typer.Typer()

    @demo.command()
    @handle_errors
    def run(path: str = "x") -> None:
        raise exc

    @demo.command()
    def other() -> None:
        pass

    return demo


def test_geotool_error_is_one_line_exit_2():
    result = runner.invoke(_error_app(InputFileError("scene.tif: no such raster; check the path")), ["run"])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == ["error: scene.tif: no such raster; check the path"]


def test_unexpected_error_exits_1_and_says_bug():
    result = runner.invoke(_error_app(ZeroDivisionError("boom")), ["run"])
    assert result.exit_code == 1
    assert "unexpected ZeroDivisionError: boom" in result.output and "--debug" in result.output


def test_option_parsers():
    assert parse_int_list("1, 2,3", "--rgb-bands") == [1, 2, 3]
    assert parse_band_list("4,nir") == [4, "nir"]
    assert parse_int_list(None, "--x") is None
    with pytest.raises(ConfigError, match="--rgb-bands takes comma-separated integers"):
        parse_int_list("1,a", "--rgb-bands")


class _Demo(GeotoolConfig):
    n: int = Field(10, ge=1, description="points")
    method: str = Field("maxvol", description="method")


def test_config_yaml_then_flags(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("n: 5\nmethod: clhs\n")
    cfg = load_config(_Demo, path, {"n": 7, "method": None})
    assert (cfg.n, cfg.method) == (7, "clhs")
    path.write_text("n: 0\n")
    with pytest.raises(ConfigError, match="invalid setting n"):
        load_config(_Demo, path)
    path.write_text("m: 3\n")
    with pytest.raises(ConfigError, match="invalid setting m"):
        load_config(_Demo, path)
    path.write_text("- a list\n")
    with pytest.raises(ConfigError, match="YAML mapping"):
        load_config(_Demo, path)


def test_sidecar_records_version_seed_config_and_hashes(tmp_path):
    inp = tmp_path / "in.txt"
    inp.write_text("abc")
    out = tmp_path / "points.gpkg"
    side = write_sidecar(out, "soil-sample", _Demo(), inputs=[inp], seed=3, results={"n": 10})
    assert side == sidecar_path(out) == tmp_path / "points.gpkg.json"
    record = json.loads(side.read_text())
    assert record["geotool_version"] == __version__ and record["seed"] == 3
    assert record["config"] == {"n": 10, "method": "maxvol"}
    assert record["inputs"][str(inp)] == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_presets_ship_inside_the_package_and_resolve_by_name(tmp_path, monkeypatch):
    """Presets are package data (a wheel install has them); `--config oba` finds the preset when no such
    file exists, a real file of that name wins, and an unknown preset lists the available ones."""
    from importlib.resources import files

    from geotool.config import preset_names, read_preset, read_yaml_or_preset
    from geotool.segmentation.config import SegmentationConfig

    assert {"buildings", "forest", "nir", "oba", "soil"} <= set(preset_names())
    assert (files("geotool") / "configs" / "buildings.yaml").is_file()
    cfg = load_config(SegmentationConfig, None, {"images": ["a.tif"], "labels": ["l.gpkg"]}, preset="buildings")
    assert cfg.task == "buildings"
    monkeypatch.chdir(tmp_path)
    assert read_yaml_or_preset("oba") == read_preset("oba")
    (tmp_path / "oba").write_text("scene_size: 64\n")
    assert read_yaml_or_preset("oba") == {"scene_size": 64}
    with pytest.raises(ConfigError, match="available: buildings, forest"):
        read_preset("nope")


def test_debug_shows_the_traceback_of_an_error_and_of_a_bug(monkeypatch):
    from geotool.run_state import STATE

    monkeypatch.setattr(STATE, "debug", True)
    for exc, code in ((InputFileError("scene.tif: no such raster; check the path"), 2), (ZeroDivisionError("boom"), 1)):
        result = runner.invoke(_error_app(exc), ["run"])
        assert result.exit_code == code
        assert "Traceback (most recent call last)" in result.output and type(exc).__name__ in result.output

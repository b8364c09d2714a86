"""A batch in one process finishes scene k (COGs, renames, polygons, preview, the sidecar last) in a background
thread while scene k+1's model runs: the same files as finishing each scene before the next, outcomes in scene
order, a failure in the background that scene's alone (no output or temp file of it left), and interrupts that
leave no temp file behind."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from geotool.batch.report import read_report
from geotool.cli.main import app
from nir_helpers import write_nir_checkpoint
from segmentation_helpers import make_scene, write_checkpoint

runner = CliRunner()
SIZES = [(300, 270), (261, 333), (290, 280)]  # odd sizes over one 256 tile: each COG gets an overview


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    """Three uint16 scenes on UTM 33N and a segmentation model."""
    d = tmp_path_factory.mktemp("overlap")
    folder = d / "scenes"
    folder.mkdir()
    for i, (h, w) in enumerate(SIZES):
        make_scene(folder / f"s{i}.tif", height=h, width=w, seed=i)
    return {"dir": folder, "model": write_checkpoint(d / "model.ckpt")}


@pytest.fixture
def serial(monkeypatch):
    """Finish every scene before the next one starts (no background thread)."""
    monkeypatch.setattr("geotool.batch.run.BACKGROUND_FINISHING", False)


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def _sidecar(data: bytes, folder: Path) -> dict:
    """A sidecar without what differs from run to run: the time, the seconds, the output folder's name."""

    def scrub(value):
        if isinstance(value, dict):
            return {k: scrub(v) for k, v in value.items() if "second" not in k and k != "created_utc"}
        if isinstance(value, list):
            return [scrub(v) for v in value]
        return value

    return scrub(json.loads(data.decode().replace(str(folder), "OUT")))


def _polygons(path: Path):
    import geopandas as gpd

    frame = gpd.read_file(path)
    return frame.drop(columns="geometry").to_dict("list"), [g.wkb for g in frame.geometry]


def _same_outputs(a: Path, b: Path) -> None:
    """Every file of two output folders the same: rasters, .aux.xml and previews byte for byte; polygons feature
    for feature (a GeoPackage records its write time); sidecars but for time and paths."""
    fa, fb = _files(a), _files(b)
    assert sorted(fa) == sorted(fb)
    for name in fa:
        if name.endswith(".json"):
            assert _sidecar(fa[name], a) == _sidecar(fb[name], b), name
        elif name.endswith(".gpkg"):
            assert _polygons(a / name) == _polygons(b / name), name
        elif name == "scenes.csv":
            assert [r["status"] for r in read_report(a / name)] == [r["status"] for r in read_report(b / name)]
        else:
            assert fa[name] == fb[name], name


def test_predict_writes_the_same_bytes_with_and_without_background_finishing(scenes, tmp_path, monkeypatch):
    import geotool.batch.run as batch_run
    from geotool.io.gdal_settings import gdal_cache_max

    cache = gdal_cache_max()
    args = ("predict", scenes["model"], scenes["dir"], "--probabilities", "--threads", "1")
    ran_in = []
    original = batch_run.BackgroundFinisher.submit

    def submit(self, started):
        ran_in.append(started.scene)
        return original(self, started)

    monkeypatch.setattr(batch_run.BackgroundFinisher, "submit", submit)
    res = invoke(*args, "-o", tmp_path / "overlap", "--polygons", tmp_path / "overlap" / "all.gpkg")
    assert res.exit_code == 0, res.output
    assert [Path(s).name for s in ran_in] == ["s0.tif", "s1.tif"]  # the last scene finishes in this thread
    assert gdal_cache_max() == cache  # the engine and the COGs in the background shared it and gave it back
    monkeypatch.setattr("geotool.batch.run.BACKGROUND_FINISHING", False)
    res = invoke(*args, "-o", tmp_path / "serial", "--polygons", tmp_path / "serial" / "all.gpkg")
    assert res.exit_code == 0, res.output
    assert len(ran_in) == 2
    names = set(_files(tmp_path / "overlap"))
    for i in range(3):  # classes (+ .aux.xml), probabilities, polygons, preview, sidecar per scene
        assert {f"s{i}_classes.tif", f"s{i}_classes.tif.aux.xml", f"s{i}_probs.tif", f"s{i}_polygons.gpkg",
                f"s{i}_preview.png", f"s{i}_classes.tif.json"} <= names
    _same_outputs(tmp_path / "overlap", tmp_path / "serial")


def test_generate_nir_writes_the_same_bytes_with_and_without_background_finishing(tmp_path, monkeypatch):
    from nir_helpers import context_scene

    folder = tmp_path / "rgb"
    folder.mkdir()
    for i, size in enumerate((70, 48, 61)):
        context_scene(folder / f"d{i}.tif", size=size, seed=i)
    model = write_nir_checkpoint(tmp_path / "nir.ckpt")
    args = ("generate-nir", model, folder, "--ndvi", "--stack", "--threads", "1")
    assert invoke(*args, "-o", tmp_path / "overlap").exit_code == 0
    monkeypatch.setattr("geotool.batch.run.BACKGROUND_FINISHING", False)
    assert invoke(*args, "-o", tmp_path / "serial").exit_code == 0
    assert len([n for n in _files(tmp_path / "overlap") if n.endswith(".tif")]) == 6
    _same_outputs(tmp_path / "overlap", tmp_path / "serial")


def test_generate_nir_a_failed_sidecar_in_the_background_removes_that_scenes_rasters(tmp_path, monkeypatch):
    """The sidecar is the last step: when it fails, the scene's NIR and NDVI (already renamed) go again."""
    import geotool.nir.generate as generate
    from nir_helpers import context_scene

    folder = tmp_path / "rgb"
    folder.mkdir()
    for i in range(3):
        context_scene(folder / f"d{i}.tif", size=40, seed=i)
    original = generate.write_sidecar
    seen = []

    def sidecar(output, *args, **kwargs):
        if Path(output).name.startswith("d1"):
            seen.append(_finishing_in_background())
            assert Path(output).exists()
            raise OSError(28, "No space left on device (injected)")
        return original(output, *args, **kwargs)

    monkeypatch.setattr(generate, "write_sidecar", sidecar)
    out = tmp_path / "out"
    res = invoke("generate-nir", write_nir_checkpoint(tmp_path / "nir.ckpt"), folder, "-o", out, "--ndvi", "--threads", "1")
    assert res.exit_code == 2, res.output
    assert seen == [True]
    rows = read_report(out / "scenes.csv")
    assert [r["status"] for r in rows] == ["done", "failed", "done"] and "No space left" in rows[1]["message"]
    assert not list(out.glob("d1*")) and not list(out.glob(".*"))
    assert sorted(p.name for p in out.glob("d[02]*")) == ["d0_nir.tif", "d0_nir.tif.json", "d0_nir_ndvi.tif",
                                                          "d2_nir.tif", "d2_nir.tif.json", "d2_nir_ndvi.tif"]


def _finishing_in_background() -> bool:
    return any(t.name.startswith("geotool-finish") for t in threading.enumerate())


def _fail_in(monkeypatch, where: str, scene: str, seen: list):
    """Make the finishing of ``scene`` fail: in its COG copy (before anything is renamed) or in its polygons
    (after its rasters are in place)."""
    if where == "cog":
        from geotool.io.raster import RasterWriter

        original = RasterWriter._build_cog

        def build(self):
            if self.path.name.startswith(scene):
                seen.append(_finishing_in_background())
                raise RuntimeError("injected COG failure")
            return original(self)

        monkeypatch.setattr(RasterWriter, "_build_cog", build)
    else:
        import geotool.segmentation.predict as predict

        original = predict._scene_polygons

        def polygons(res, payload, cfg, path):
            if Path(res["raster"]).name.startswith(scene):
                seen.append(_finishing_in_background())
                assert Path(res["classes"]).exists()  # the rasters were renamed: they must go again
                raise RuntimeError("injected polygon failure")
            return original(res, payload, cfg, path)

        monkeypatch.setattr(predict, "_scene_polygons", polygons)


@pytest.mark.parametrize("where", ["cog", "polygons"])
def test_a_failure_in_the_background_finishing_fails_that_scene_alone_and_leaves_nothing(scenes, tmp_path,
                                                                                         monkeypatch, where):
    seen: list[str] = []
    _fail_in(monkeypatch, where, "s1", seen)
    out = tmp_path / "out"
    res = invoke("predict", scenes["model"], scenes["dir"], "-o", out, "--probabilities", "--polygons",
                 out / "all.gpkg", "--threads", "1")
    assert res.exit_code == 2, res.output
    assert seen and all(seen)  # it failed while finishing in the background thread
    rows = read_report(out / "scenes.csv")
    assert [Path(r["input"]).name for r in rows] == ["s0.tif", "s1.tif", "s2.tif"]
    assert [r["status"] for r in rows] == ["done", "failed", "done"]
    assert f"injected {'COG' if where == 'cog' else 'polygon'} failure" in rows[1]["message"]
    assert rows[1]["outputs"] == ""
    assert not list(out.glob("s1_*")) and not list(out.glob(".*"))  # none of its outputs, no temp file at all
    for i in (0, 2):
        assert (out / f"s{i}_classes.tif.json").exists() and (out / f"s{i}_polygons.gpkg").exists()
    assert "1 of 3 scenes failed" in res.output.strip().splitlines()[-1]
    # a rerun with --skip-existing redoes only the failed scene
    monkeypatch.undo()
    again = invoke("predict", scenes["model"], scenes["dir"], "-o", out, "--probabilities", "--polygons",
                   out / "all.gpkg", "--threads", "1", "--skip-existing")
    assert again.exit_code == 0, again.output
    assert [r["status"] for r in read_report(out / "scenes.csv")] == ["skipped", "done", "skipped"]


def test_outcomes_come_in_scene_order_once_each_while_finishings_are_slow(scenes, tmp_path, monkeypatch):
    """s0's finishing outlasts s1's model, s1 fails before any output: the report and the callbacks still go
    s0, s1, s2, each once."""
    from geotool.batch import BatchOptions
    from geotool.io.raster import RasterWriter
    from geotool.segmentation.predict import PredictConfig, run_predict

    folder = tmp_path / "scenes"
    folder.mkdir()
    for i in range(3):
        (folder / f"s{i}.tif").write_bytes((scenes["dir"] / f"s{i}.tif").read_bytes())
    bad = folder / "s1.tif"
    bad.write_bytes(bad.read_bytes()[: bad.stat().st_size // 2])
    original = RasterWriter._build_cog
    order: list[str] = []

    def slow(self):
        if self.path.name.startswith("s0"):
            time.sleep(1.0)
        order.append(f"cog {self.path.stem}")
        return original(self)

    monkeypatch.setattr(RasterWriter, "_build_cog", slow)
    called: list[tuple[str, str]] = []

    def on_outcome(outcome):
        called.append((Path(outcome.input).name, outcome.status))
        order.append(f"outcome {Path(outcome.input).name}")

    cfg = PredictConfig(model=str(scenes["model"]), rasters=[str(folder)], output=str(tmp_path / "out"), threads=1)
    result = run_predict(cfg, BatchOptions(), on_outcome=on_outcome)["batch"]
    assert called == [("s0.tif", "done"), ("s1.tif", "failed"), ("s2.tif", "done")]
    assert [Path(o.input).name for o in result.outcomes] == ["s0.tif", "s1.tif", "s2.tif"]
    assert [Path(r["input"]).name for r in read_report(tmp_path / "out" / "scenes.csv")] == ["s0.tif", "s1.tif", "s2.tif"]
    assert order.index("cog s0_classes") < order.index("outcome s0.tif")
    rows = read_report(tmp_path / "out" / "scenes.csv")
    assert float(rows[0]["seconds"]) >= 1.0  # a scene's seconds include its finishing


def test_ctrl_c_while_the_previous_scene_finishes_removes_its_temp_files(scenes, tmp_path, monkeypatch):
    """Ctrl-C during s1's model while s0's COGs are being made in the background: exit 130, s0 is stopped at its
    next step and removed, and no temp file of any scene is left."""
    from geotool.io.raster import RasterWriter
    from geotool.segmentation import predict

    original = RasterWriter._build_cog
    building = threading.Event()

    def slow(self):
        if self.path.name.startswith("s0"):
            building.set()
            time.sleep(0.5)
        return original(self)

    def check(payload, src, path):
        if Path(path).name == "s1.tif":
            assert building.wait(30)  # s0 is finishing in the background now
            raise KeyboardInterrupt
        return original_check(payload, src, path)

    original_check = predict.check_scene
    monkeypatch.setattr(RasterWriter, "_build_cog", slow)
    monkeypatch.setattr(predict, "check_scene", check)
    out = tmp_path / "out"
    res = invoke("predict", scenes["model"], scenes["dir"], "-o", out, "--probabilities", "--threads", "1")
    assert res.exit_code == 130, res.output
    assert not list(out.glob(".*"))  # no temp file (stream, .ovr, COG copy) of s0 or s1
    assert not list(out.glob("s*_*"))  # s0 was stopped after its COGs were made, before they were renamed
    assert threading.active_count() < 10 and not any(t.name.startswith("geotool-finish") for t in threading.enumerate())


def test_sigterm_in_a_batch_exits_143_and_leaves_every_scene_complete_or_absent(scenes, tmp_path):
    import signal
    import subprocess
    import sys

    folder = tmp_path / "scenes"
    folder.mkdir()
    for i in range(2):
        make_scene(folder / f"b{i}.tif", height=520, width=520, seed=i)
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "geotool", "predict", str(scenes["model"]), str(folder), "-o", str(out),
                             "--probabilities", "--threads", "1", "--batch-size", "2"], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list(out.glob(".b1_classes.*")) and proc.poll() is None:
        time.sleep(0.02)  # b1's model has started: b0 is finishing in the background (or just finished)
    assert proc.poll() is None, "predict ended before it was signalled"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "terminated (SIGTERM)" in err
    assert not list(out.glob(".*"))
    complete = {"classes.tif", "classes.tif.aux.xml", "probs.tif", "preview.png", "classes.tif.json"}
    for i in range(2):
        assert {p.name[3:] for p in out.glob(f"b{i}_*")} in (set(), complete), i


def test_gdal_cache_is_restored_when_two_threads_hold_it_and_end_in_either_order():
    """The engine (one thread) and the previous scene's COG (another) both size GDAL's one block cache; with
    rasterio.Env the one ending last put back the other's size for good."""
    from geotool.io.gdal_cache import gdal_cache
    from geotool.io.gdal_settings import gdal_cache_max

    before = gdal_cache_max()
    if before is None:
        pytest.skip("libgdal is not visible to ctypes on this platform")
    entered, release = threading.Event(), threading.Event()

    def other():
        with gdal_cache(128 * 2**20):
            entered.set()
            release.wait(10)

    with gdal_cache(50 * 2**20):
        thread = threading.Thread(target=other)
        thread.start()
        assert entered.wait(10)
        assert gdal_cache_max() == 178 * 2**20  # both at once: the sum
    assert gdal_cache_max() == 128 * 2**20  # the main thread ended first: the other's share stays
    release.set()
    thread.join()
    assert gdal_cache_max() == before  # the last one out restores the process's own size

"""Batches of scenes: shards, keep-going with scenes.csv, --skip-existing, each file one scene, and Dask
workers (a real LocalCluster of processes) writing the same files as one process."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from typer.testing import CliRunner

from geotool.batch.options import BatchOptions, parse_shard, take_shard
from geotool.batch.report import read_report
from geotool.cli.main import app
from geotool.errors import ConfigError, GeotoolError
from nir_helpers import write_nir_checkpoint
from segmentation_helpers import make_scene, write_checkpoint

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="session")
def fleet(tmp_path_factory):
    """Four 96 x 80 scenes in a folder, one truncated mid-file, and a model."""
    d = tmp_path_factory.mktemp("fleet")
    scenes = d / "scenes"
    scenes.mkdir()
    for i in range(4):
        make_scene(scenes / f"s{i}.tif", height=96, width=80, seed=i)
    bad = scenes / "s2.tif"
    bad.write_bytes(bad.read_bytes()[: bad.stat().st_size // 2])  # the header reads, the pixels do not
    return {"dir": d, "scenes": scenes, "model": write_checkpoint(d / "model.ckpt")}


def test_shards_partition_the_sorted_list_exactly_once():
    items = [f"s{i:03d}" for i in range(23)]
    for n in (1, 2, 5, 23, 30):
        parts = [take_shard(items, (k, n)) for k in range(1, n + 1)]
        flat = [x for part in parts for x in part]
        assert sorted(flat) == items and len(flat) == len(items)
        assert max(map(len, parts)) - min(map(len, parts)) <= 1
    env = {"SLURM_ARRAY_TASK_ID": "12", "SLURM_ARRAY_TASK_MIN": "10", "SLURM_ARRAY_TASK_COUNT": "4"}
    assert parse_shard("auto", env) == (3, 4) and parse_shard("2/7", {}) == (2, 7)
    with pytest.raises(ConfigError, match="SLURM_ARRAY_TASK_ID"):
        parse_shard("auto", {})
    with pytest.raises(ConfigError, match="1 <= K <= N"):
        parse_shard("5/4", {})
    res = invoke("predict", "m.ckpt", "x.tif", "-o", "o", "--shard", "three")
    assert res.exit_code == 2 and "--shard takes K/N" in res.output


def test_a_bad_scene_is_reported_and_the_batch_goes_on_then_skip_existing(fleet, tmp_path):
    out = tmp_path / "out"
    res = invoke("predict", fleet["model"], fleet["scenes"], "-o", out, "--no-preview", "--threads", "1")
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert lines[-1] == f"1 of 4 scenes failed (see {out / 'scenes.csv'})"
    assert any(line.startswith("failed:") and "s2.tif" in line and "corrupt" in line for line in lines)
    rows = read_report(out / "scenes.csv")
    assert [Path(r["input"]).name for r in rows] == ["s0.tif", "s1.tif", "s2.tif", "s3.tif"]
    assert [r["status"] for r in rows] == ["done", "done", "failed", "done"]
    assert all(float(r["seconds"]) > 0 for r in rows) and rows[2]["outputs"] == ""
    assert rows[0]["outputs"].split(";") == [str(out / "s0_classes.tif"), str(out / "s0_classes.tif.json")]
    assert not (out / "s2_classes.tif").exists() and not list(out.glob(".*"))  # nothing half-written, no temp file
    before = {p: p.stat().st_mtime_ns for p in out.glob("s*_classes.tif")}
    again = invoke("predict", fleet["model"], fleet["scenes"], "-o", out, "--no-preview", "--skip-existing", "--threads", "1")
    assert again.exit_code == 2
    assert [r["status"] for r in read_report(out / "scenes.csv")] == ["skipped", "skipped", "failed", "skipped"]
    assert {p: p.stat().st_mtime_ns for p in out.glob("s*_classes.tif")} == before  # not rewritten


def test_shards_write_their_own_report_and_together_cover_the_batch(fleet, tmp_path):
    out = tmp_path / "out"
    names = []
    for k in (1, 2):
        res = invoke("predict", fleet["model"], fleet["scenes"] / "s[013].tif", "-o", out, "--no-preview",
                     "--shard", f"{k}/2", "--threads", "1")
        assert res.exit_code == 0, res.output
        rows = read_report(out / f"scenes-{k}-of-2.csv")
        assert {r["status"] for r in rows} == {"done"}
        names += [Path(r["input"]).name for r in rows]
    assert sorted(names) == ["s0.tif", "s1.tif", "s3.tif"] and not (out / "scenes.csv").exists()


def test_lone_scene_fails_as_one_line_without_report(fleet, tmp_path):
    out = tmp_path / "out"
    res = invoke("predict", fleet["model"], fleet["scenes"] / "s2.tif", "-o", out, "--no-preview")
    assert res.exit_code == 2 and res.output.count("\n") == 1 and "s2.tif" in res.output and "corrupt" in res.output
    assert not out.exists()
    afile = tmp_path / "afile"
    afile.write_text("x")
    res = invoke("predict", fleet["model"], fleet["scenes"] / "s0.tif", "-o", afile)
    assert res.exit_code == 2 and "is a file; give a folder" in res.output


def _pixels(folder: Path) -> dict[str, np.ndarray]:
    out = {}
    for p in sorted(folder.glob("*.tif")):
        with rasterio.open(p) as ds:
            out[p.name] = ds.read()
    return out


def _worker_settings():
    import os

    import torch

    from geotool.batch.worker import prepare_worker

    prepare_worker()
    return os.environ.get("OMP_NUM_THREADS"), os.environ.get("MALLOC_TRIM_THRESHOLD_"), torch.get_num_threads()


def test_dask_local_cluster_writes_the_same_files_as_one_process(fleet, tmp_path, monkeypatch):
    """``--scheduler local:2``: a real LocalCluster of two worker processes, which share the cores (each worker's
    torch/BLAS threads are the cores / workers) without Dask's MALLOC_TRIM_THRESHOLD_, writes the very bytes of a
    one-process run. One cluster serves both checks (each worker process imports torch): the CLI's own cluster
    is probed as soon as it has started, before its first scene."""
    import os

    from distributed import Client

    from geotool.batch import cluster as cluster_module

    start, seen = cluster_module.local_cluster, []

    def local_cluster_then_probe(LocalCluster, workers):
        cluster = start(LocalCluster, workers)
        with Client(cluster) as client:
            seen.append((workers, set(client.run(_worker_settings).values())))
        return cluster

    monkeypatch.setattr(cluster_module, "local_cluster", local_cluster_then_probe)
    here, there = tmp_path / "here", tmp_path / "dask"
    args = ("predict", fleet["model"], fleet["scenes"], "--no-preview", "--probabilities", "--threads", "1")
    assert invoke(*args, "-o", here).exit_code == 2
    res = invoke(*args, "-o", there, "--scheduler", "local:2")
    assert res.exit_code == 2, res.output
    threads = max(1, (os.cpu_count() or 1) // 2)
    assert seen == [(2, {(str(threads), None, threads)})]
    mine, theirs = _pixels(here), _pixels(there)
    assert sorted(mine) == sorted(theirs) and len(mine) == 6  # 3 scenes x classes + probabilities
    for name in mine:
        assert np.array_equal(mine[name], theirs[name]), name
    assert [r["status"] for r in read_report(there / "scenes.csv")] == ["done", "done", "failed", "done"]


def test_batch_options_refuse_two_clusters():
    with pytest.raises(ConfigError, match="not several"):
        BatchOptions(scheduler="local:2", scheduler_file="s.json").check()


def test_generate_nir_takes_each_file_of_a_folder_or_glob_as_one_scene(tmp_path):
    from nir_helpers import context_scene

    scenes = tmp_path / "rgb"
    scenes.mkdir()
    for i in range(3):
        context_scene(scenes / f"d{i}.tif", size=48, seed=i)
    model = write_nir_checkpoint(tmp_path / "nir.ckpt")
    res = invoke("generate-nir", model, scenes, "-o", tmp_path / "out", "--threads", "1")
    assert res.exit_code == 0, res.output
    outs = sorted((tmp_path / "out").glob("*_nir.tif"))
    assert [p.name for p in outs] == ["d0_nir.tif", "d1_nir.tif", "d2_nir.tif"]
    assert [r["status"] for r in read_report(tmp_path / "out" / "scenes.csv")] == ["done"] * 3
    lone = invoke("generate-nir", model, scenes / "d1.tif", "-o", tmp_path / "d1.tif", "--threads", "1")
    assert lone.exit_code == 0, lone.output
    with rasterio.open(outs[1]) as a, rasterio.open(tmp_path / "d1.tif") as b:
        assert a.count == 1 and np.array_equal(a.read(), b.read()) and a.transform == b.transform
    res = invoke("generate-nir", model, str(scenes / "d*.tif"), "-o", tmp_path / "out", "--skip-existing")
    assert res.exit_code == 0 and res.output.count("(outputs exist)") == 3 and "0 of 3 scenes done, 3 skipped" in res.output
    import json

    res = invoke("evaluate-nir", tmp_path / "out", scenes, "-o", tmp_path / "eval")  # d1_nir.tif scored against d1.tif
    assert res.exit_code == 0, res.output
    pooled = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    per = [json.loads((tmp_path / "eval" / f"d{i}_nir_metrics.json").read_text())["model"] for i in range(3)]
    assert sorted(Path(p).name for p in pooled["scenes"]) == ["d0_nir.tif", "d1_nir.tif", "d2_nir.tif"]
    assert pooled["mean"]["model"]["n_pixels"] == sum(p["n_pixels"] for p in per) == 3 * 48 * 48
    assert pooled["mean"]["model"]["mae"] == pytest.approx(np.mean([p["mae"] for p in per]))


def test_shipped_slurm_example_builds_a_job_script_and_bad_cluster_files_are_refused(tmp_path):
    from geotool.batch.cluster import build_jobqueue_cluster

    cluster, jobs = build_jobqueue_cluster("slurm")
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    assert jobs == 4 and "#SBATCH --gres=gpu:1" in script and "#SBATCH -p gpu" in script
    bad = tmp_path / "c.yaml"
    bad.write_text("type: slurm\njobs: 1\ncoress: 8\n")
    with pytest.raises(ConfigError, match="settings rejected"):
        build_jobqueue_cluster(str(bad))
    from geotool.cli._common import batch_options

    with pytest.raises(GeotoolError, match="none.yaml: no such file"):
        batch_options(False, None, None, None, tmp_path / "none.yaml")


def test_dask_workers_take_their_own_gpu_slot(monkeypatch):
    import torch

    from geotool.models.device import spread_over_gpus

    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert [spread_over_gpus(cuda, slot) for slot in (0, 1, 5)] == [torch.device(f"cuda:{i}") for i in (0, 1, 1)]
    assert spread_over_gpus(cuda, None) == cuda and spread_over_gpus(cpu, 3) == cpu
    assert spread_over_gpus(torch.device("cuda:2"), 0) == torch.device("cuda:2")  # an explicit GPU is kept


def test_evaluate_many_predictions_per_scene_and_pooled(fleet, tmp_path):
    import json

    from geotool.io.raster import write_raster
    from geotool.io.vector import write_vector
    from segmentation_helpers import mask_polygons

    pred = tmp_path / "pred"
    assert invoke("predict", fleet["model"], fleet["scenes"] / "s[01].tif", "-o", pred, "--no-preview").exit_code == 0
    grid, mask, _ = make_scene(tmp_path / "ref_scene.tif", height=96, width=80)
    labels = write_vector(mask_polygons(mask, grid), tmp_path / "labels.gpkg")
    refs = tmp_path / "refs"
    for name in ("s0", "s1"):
        write_raster(refs / f"{name}.tif", mask, grid, nodata=255)
    out = tmp_path / "eval"
    for reference in (labels, refs):
        res = invoke("evaluate", pred, reference, "-o", out / reference.stem)
        assert res.exit_code == 0, res.output
        per = [json.loads((out / reference.stem / f"{n}_classes_metrics.json").read_text()) for n in ("s0", "s1")]
        pooled = json.loads((out / reference.stem / "metrics.json").read_text())
        assert np.array_equal(np.add(*[np.asarray(p["confusion_matrix"]) for p in per]), pooled["confusion_matrix"])
        assert pooled["pixels"] == sum(p["pixels"] for p in per) > 0
        assert pooled["objects"]["reference_objects"] == sum(p["objects"]["reference_objects"] for p in per)
    res = invoke("evaluate", pred, tmp_path / "refs_missing", "-o", out / "x")
    assert res.exit_code == 2
    (refs / "s1.tif").unlink()
    res = invoke("evaluate", pred, refs, "-o", out / "partial")
    assert res.exit_code == 2 and "no reference raster named s1 or s1_classes" in res.output
    assert res.output.strip().splitlines()[-1].startswith("1 of 2 scenes failed")


def test_log_file_records_command_settings_scenes_and_tracebacks(fleet, tmp_path):
    log = tmp_path / "run.log"
    res = runner.invoke(app, ["--log-file", str(log), "predict", str(fleet["model"]), str(fleet["scenes"]),
                              "-o", str(tmp_path / "out"), "--no-preview", "--threads", "1"])
    assert res.exit_code == 2
    text = log.read_text()
    assert "predict:" in text and "resolved PredictConfig" in text and '"threads":1' in text
    assert "s0.tif done in" in text and "s2.tif failed:" in text and "Traceback" in text and "RasterioIOError" in text
    assert "ended with exit code 2" in text
    res = runner.invoke(app, ["--log-file", str(tmp_path / "no" / "such" / "dir.log"), "predict", "m", "x", "-o", "o"])
    assert res.exit_code == 2 and "give a writable path" in res.output


def test_sigterm_during_predict_exits_143_and_leaves_no_temp_file(fleet, tmp_path):
    import signal
    import subprocess
    import sys
    import time

    big = tmp_path / "big.tif"
    make_scene(big, height=1500, width=1500, seed=9)
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "geotool", "predict", str(fleet["model"]), str(big), "-o", str(out),
                             "--no-preview", "--threads", "1", "--batch-size", "1"], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list(out.glob(".big_classes.*")) and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "predict ended before it was signalled"
    time.sleep(0.3)  # mid-scene: windows are being written into the temp file
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "terminated (SIGTERM)" in err and err.count("\n") == 1
    assert not out.exists() or list(out.iterdir()) == []


def test_a_rerun_removes_temp_files_a_killed_run_left(fleet, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    left = [out / ".s0_classes.abc123.tmp.tif", out / ".s0_classes.abc123.tmp.tif.aux.xml"]
    for p in left:
        p.write_bytes(b"")
    other = out / ".s1_classes.zzz.tmp.tif"  # another scene's: not this scene's to remove
    other.write_bytes(b"")
    res = invoke("predict", fleet["model"], fleet["scenes"] / "s0.tif", "-o", out, "--no-preview", "--threads", "1")
    assert res.exit_code == 0, res.output
    assert not any(p.exists() for p in left) and other.exists() and (out / "s0_classes.tif").exists()


def test_evaluate_refuses_an_image_as_prediction_and_points_as_reference(fleet, tmp_path):
    import geopandas as gpd
    from shapely.geometry import Point

    from geotool.io.vector import write_vector

    scene = fleet["scenes"] / "s0.tif"
    res = invoke("evaluate", scene, scene, "-o", tmp_path / "m.json")
    assert res.exit_code == 2 and "is not a class raster (3 band(s) of uint16)" in res.output
    pred = tmp_path / "pred"
    assert invoke("predict", fleet["model"], scene, "-o", pred, "--no-preview").exit_code == 0
    points = write_vector(gpd.GeoDataFrame(geometry=[Point(500010, 4999990)], crs="EPSG:32633"), tmp_path / "p.gpkg")
    res = invoke("evaluate", pred / "s0_classes.tif", points, "-o", tmp_path / "m.json")
    assert res.exit_code == 2 and "holds Point geometries" in res.output and not (tmp_path / "m.json").exists()


def test_predict_refuses_a_scene_on_another_scale_than_the_training_data(fleet, tmp_path):
    from geotool.io.raster import RasterSource, write_raster

    with RasterSource(fleet["scenes"] / "s0.tif") as src:
        data, _ = src.read()
        grid = src.grid
    small = write_raster(tmp_path / "as_uint8.tif", (data // 256).astype("uint8"), grid, nodata=0)  # uint16 scaled to bytes
    res = invoke("predict", fleet["model"], small, "-o", tmp_path / "out")
    assert res.exit_code == 2 and "another scale or data type" in res.output and "band 1 averages" in res.output
    assert not (tmp_path / "out").exists()
    brighter = write_raster(tmp_path / "brighter.tif", (data * 1.3).astype("uint16"), grid, nodata=0)  # another date
    assert invoke("predict", fleet["model"], brighter, "-o", tmp_path / "ok", "--no-preview").exit_code == 0

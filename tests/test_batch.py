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
from geotool.errors import ConfigError
from segmentation_helpers import make_scene

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def write_checkpoint(path: Path, seed: int = 0) -> Path:
    """A segmentation model.ckpt with random weights (no training: these tests are about plumbing)."""
    import torch

    from geotool.io.checkpoint import save_checkpoint
    from geotool.segmentation.checkpoint import FORMAT, VERSION
    from geotool.segmentation.model import build_model

    arch = {"arch": "Unet", "encoder": "resnet18", "in_channels": 3, "classes": 2,
            "options": {"encoder_depth": 3, "decoder_channels": [16, 8, 4]}}
    torch.manual_seed(seed)
    net = build_model(arch["arch"], arch["encoder"], 3, 2, options=arch["options"])
    save_checkpoint(path, {"format": FORMAT, "version": VERSION, "arch": arch, "bands": [1, 2, 3], "band_count": 3,
                           "mean": [1000.0] * 3, "std": [300.0] * 3, "class_names": ["background", "building"],
                           "window": 64, "overlap": 16, "nodata_output": 255, "input_nodata": None,
                           "state_dict": net.state_dict()})
    return path


@pytest.fixture(scope="module")
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


def test_dask_local_cluster_writes_the_same_files_as_one_process(fleet, tmp_path):
    here, there = tmp_path / "here", tmp_path / "dask"
    args = ("predict", fleet["model"], fleet["scenes"], "--no-preview", "--probabilities", "--threads", "1")
    assert invoke(*args, "-o", here).exit_code == 2
    res = invoke(*args, "-o", there, "--scheduler", "local:2")
    assert res.exit_code == 2, res.output
    mine, theirs = _pixels(here), _pixels(there)
    assert sorted(mine) == sorted(theirs) and len(mine) == 6  # 3 scenes x classes + probabilities
    for name in mine:
        assert np.array_equal(mine[name], theirs[name]), name
    assert [r["status"] for r in read_report(there / "scenes.csv")] == ["done", "done", "failed", "done"]


def test_batch_options_refuse_two_clusters():
    with pytest.raises(ConfigError, match="not several"):
        BatchOptions(scheduler="local:2", scheduler_file="s.json").check()

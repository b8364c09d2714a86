"""The catalogue of user mistakes: every bad input to every command is one clear line on stderr (no
traceback), exit code 2, and no new file, hidden or not, in the output folder.

Inputs are tiny files made once per module; models have random weights (no training). Each case gets an
empty folder of its own as the place its outputs would go."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from geotool.cli.main import app
from geotool.io.raster import Grid, write_raster
from nir_helpers import context_scene
from segmentation_helpers import UTM, make_scene, mask_polygons, write_checkpoint

runner = CliRunner()


@pytest.fixture(scope="session")
def inputs(tmp_path_factory):
    from affine import Affine

    from geotool.io.vector import write_vector
    from nir_helpers import write_nir_checkpoint

    d = tmp_path_factory.mktemp("inputs")
    grid, mask, scene = make_scene(d / "scene.tif", height=96, width=80)
    f = {"scene": scene, "seg": write_checkpoint(d / "seg.ckpt"), "nir": write_nir_checkpoint(d / "nir.ckpt"),
         "rgbn": context_scene(d / "rgbn.tif", size=64), "labels": write_vector(mask_polygons(mask, grid), d / "labels.gpkg")}
    points = mask_polygons(mask, grid)
    f["points"] = write_vector(points.set_geometry(points.geometry.representative_point()), d / "points.gpkg")
    f["truncated"] = d / "truncated.tif"
    f["truncated"].write_bytes(scene.read_bytes()[: scene.stat().st_size // 2])
    f["text_tif"] = d / "notes.tif"
    f["text_tif"].write_text("not a raster\n")
    f["text_ckpt"] = d / "model.ckpt"
    f["text_ckpt"].write_text("not a checkpoint\n")
    f["one_band"] = write_raster(d / "one_band.tif", np.full((1, 96, 80), 1000, np.uint16), grid, nodata=0)
    f["rgb_uint8"] = write_raster(d / "rgb_uint8.tif", np.full((3, 64, 64), 90, np.uint8),
                                  Grid(UTM, Affine(2.0, 0, 500000.0, 0, -2.0, 4000000.0), 64, 64), nodata=0)
    f["all_nodata"] = write_raster(d / "all_nodata.tif", np.zeros((3, 96, 80), np.uint16), grid, nodata=0)
    f["all_nodata_rgbn"] = write_raster(d / "all_nodata_rgbn.tif", np.zeros((4, 64, 64), np.uint8),
                                        Grid(UTM, Affine(2.0, 0, 500000.0, 0, -2.0, 4000000.0), 64, 64), nodata=0)
    f["classes"] = write_raster(d / "classes.tif", mask.astype(np.uint8), grid, nodata=255)
    other = Grid(UTM, Affine(2.0, 0, 600000.0, 0, -2.0, 5000000.0), 80, 96)
    f["classes_elsewhere"] = write_raster(d / "classes_elsewhere.tif", mask.astype(np.uint8), other, nodata=255)
    f["a_file"] = d / "a_file"
    f["a_file"].write_text("x")
    soil = Path(__file__).resolve().parent.parent / "data_samples" / "soil"
    f["slope"], f["ndvi"], f["kshen"] = soil / "slope.tif", soil / "ndvi.tif", soil / "kshen_data.csv"
    return f


# (id, command line with {name} for an input, {out} for the case's output folder, what stderr must say)
CASES = [
    # predict
    ("predict-missing-model", "predict {out}/none.ckpt {scene} -o {out}/o", "none.ckpt"),
    ("predict-text-model", "predict {text_ckpt} {scene} -o {out}/o", "model.ckpt"),
    ("predict-nir-model", "predict {nir} {scene} -o {out}/o", "geotool-segmentation"),
    ("predict-missing-raster", "predict {seg} {out}/none.tif -o {out}/o", "none.tif"),
    ("predict-empty-glob", "predict {seg} {out}/*.tif -o {out}/o", "matches no"),
    ("predict-truncated", "predict {seg} {truncated} -o {out}/o", "truncated.tif"),
    ("predict-text-raster", "predict {seg} {text_tif} -o {out}/o", "notes.tif"),
    ("predict-one-band", "predict {seg} {one_band} -o {out}/o", "one_band.tif"),
    ("predict-window", "predict {seg} {scene} -o {out}/o --window 50", "--window"),
    ("predict-batch-size", "predict {seg} {scene} -o {out}/o --batch-size 0", "--batch-size"),
    ("predict-polygons-suffix", "predict {seg} {scene} -o {out}/o --polygons {out}/p.txt", "--polygons"),
    ("predict-cuda", "predict {seg} {scene} -o {out}/o --device cuda", "--device"),
    ("predict-bad-device", "predict {seg} {scene} -o {out}/o --device tpu9", "--device"),
    ("predict-shard-range", "predict {seg} {scene} -o {out}/o --shard 3/2", "--shard"),
    ("predict-shard-auto", "predict {seg} {scene} -o {out}/o --shard auto", "SLURM"),
    ("predict-scheduler", "predict {seg} {scene} -o {out}/o --scheduler lokal:2", "--scheduler"),
    ("predict-two-clusters", "predict {seg} {scene} -o {out}/o --scheduler local:2 --scheduler-file {out}/s.json", "not several"),
    ("predict-output-is-file", "predict {seg} {scene} -o {a_file}", "is a file"),
    ("predict-all-nodata", "predict {seg} {all_nodata} -o {out}/o", "no valid pixel"),
    ("predict-other-scale", "predict {seg} {rgb_uint8} -o {out}/o", "another scale"),
    # generate-nir
    ("generate-missing-model", "generate-nir {out}/none.ckpt {rgbn} -o {out}/n.tif", "none.ckpt"),
    ("generate-seg-model", "generate-nir {seg} {rgbn} -o {out}/n.tif", "geotool-nir"),
    ("generate-one-band", "generate-nir {nir} {one_band} -o {out}/n.tif", "one_band.tif"),
    ("generate-output-suffix", "generate-nir {nir} {rgbn} -o {out}/n.txt", "--output"),
    ("generate-two-into-file", "generate-nir {nir} {rgbn} {rgb_uint8} -o {out}/n.tif", "give a folder"),
    ("generate-over-its-input", "generate-nir {nir} {rgbn} -o {rgbn}", "the input itself"),
    ("generate-window", "generate-nir {nir} {rgbn} -o {out}/n.tif --window 20", "--window"),
    ("generate-cuda", "generate-nir {nir} {rgbn} -o {out}/n.tif --device cuda", "--device"),
    ("generate-truncated", "generate-nir {nir} {truncated} -o {out}/n.tif", "truncated.tif"),
    ("generate-all-nodata", "generate-nir {nir} {all_nodata_rgbn} -o {out}/n.tif", "no valid pixel"),
    ("generate-uint16", "generate-nir {nir} {scene} -o {out}/n.tif", "uint16"),
    # evaluate
    ("evaluate-image-as-prediction", "evaluate {scene} {labels} -o {out}/m.json", "not a class raster"),
    ("evaluate-missing-reference", "evaluate {classes} {out}/none.gpkg -o {out}/m.json", "none.gpkg"),
    ("evaluate-output-suffix", "evaluate {classes} {labels} -o {out}/m.txt", "--output"),
    ("evaluate-other-grid", "evaluate {classes} {classes_elsewhere} -o {out}/m.json", "grid"),
    ("evaluate-class-map", "evaluate {classes} {labels} -o {out}/m.json --class-map Building", "--class-map"),
    ("evaluate-truncated", "evaluate {truncated} {labels} -o {out}/m.json", "truncated.tif"),
    # evaluate-nir
    ("evaluate-nir-missing", "evaluate-nir {out}/none.tif {rgbn} -o {out}/m.json", "none.tif"),
    ("evaluate-nir-no-nir-band", "evaluate-nir {rgbn} {rgb_uint8} -o {out}/m.json", "rgb_uint8.tif"),
    ("evaluate-nir-output-suffix", "evaluate-nir {rgbn} {rgbn} -o {out}/m.txt", "--output"),
    ("evaluate-nir-two-rgb-bands", "evaluate-nir {rgbn} {rgbn} -o {out}/m.json --rgb-bands 1,2", "--rgb-bands"),
    # oba-augment
    ("oba-missing-labels", "oba-augment --images {scene} --labels {out}/none.gpkg -o {out}/o", "none.gpkg"),
    ("oba-zero-scenes", "oba-augment --images {scene} --labels {labels} -o {out}/o -n 0", "-n"),
    ("oba-missing-image", "oba-augment --images {out}/none.tif --labels {labels} -o {out}/o", "none.tif"),
    ("oba-output-is-file", "oba-augment --images {scene} --labels {labels} -o {a_file}", "is a file"),
    # train-segmentation
    ("train-seg-point-labels", "train-segmentation -i {scene} -l {points} -o {out}/run --window 32 --max-steps 1", "points.gpkg"),
    ("train-seg-missing-labels", "train-segmentation -i {scene} -l {out}/none.gpkg -o {out}/run --window 32 --max-steps 1", "none.gpkg"),
    ("train-seg-negative-lr", "train-segmentation -i {scene} -l {labels} -o {out}/run --window 32 --lr -1 --max-steps 1", "--lr"),
    ("train-seg-window", "train-segmentation -i {scene} -l {labels} -o {out}/run --window 50 --max-steps 1", "--window"),
    ("train-seg-corrupt-resume", "train-segmentation -i {scene} -l {labels} -o {out}/run --window 32 --resume {text_ckpt} --max-steps 1", "model.ckpt"),
    ("train-seg-gpu", "train-segmentation -i {scene} -l {labels} -o {out}/run --window 32 --accelerator gpu --max-steps 1", "--accelerator gpu"),
    ("train-seg-accelerator", "train-segmentation -i {scene} -l {labels} -o {out}/run --window 32 --accelerator tpu --max-steps 1", "--accelerator"),
    # train-nir
    ("train-nir-gpu", "train-nir {rgbn} -o {out}/run --accelerator gpu --max-steps 1", "--accelerator gpu"),
    ("train-nir-missing", "train-nir {out}/none.tif -o {out}/run --max-steps 1", "none.tif"),
    ("train-nir-band-range", "train-nir {rgbn} -o {out}/run --nir-band 9 --max-steps 1", "9"),
    ("train-nir-ema", "train-nir {rgbn} -o {out}/run --ema 1 --max-steps 1", "--ema"),
    ("train-nir-band-is-rgb", "train-nir {rgbn} -o {out}/run --nir-band 1 --max-steps 1", "--rgb-bands"),
    # soil-sample / soil-evaluate
    ("soil-sample-missing", "soil-sample {out}/none.tif -n 5 -o {out}/p.gpkg", "none.tif"),
    ("soil-sample-zero", "soil-sample {slope} {ndvi} -n 0 -o {out}/p.gpkg", "-n"),
    ("soil-sample-suffix", "soil-sample {slope} {ndvi} -n 5 -o {out}/p.txt", "p.txt"),
    ("soil-evaluate-crs", "soil-evaluate {kshen} -o {out}/t.csv --x-column LON --y-column LAT --crs EPSG:999999", "EPSG:999999"),
    ("soil-evaluate-columns", "soil-evaluate {kshen} -o {out}/t.csv --crs EPSG:32637", "column"),
]


@pytest.mark.parametrize("case,line,says", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_clear_line_exit_2_and_no_file(inputs, tmp_path, case, line, says):
    out = tmp_path / "case"
    out.mkdir()
    args = [part.format(out=out, **inputs) for part in line.split()]
    res = runner.invoke(app, args)
    assert res.exit_code == 2, f"{case}: exit {res.exit_code}\n{res.output}"
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), f"{case}: {res.stderr}"
    assert "Traceback" not in res.output and "this is a bug" not in res.output
    assert says in lines[0], f"{case}: {lines[0]!r} does not say {says!r}"
    left = sorted(p.relative_to(out) for p in out.rglob("*"))
    assert left == [], f"{case} left {left}"


def test_the_catalogue_covers_every_command_with_forty_cases():
    commands = {line.split()[0] for _, line, _ in CASES}
    assert len(CASES) >= 40 and commands == {"predict", "generate-nir", "evaluate", "evaluate-nir", "oba-augment",
                                             "train-segmentation", "train-nir", "soil-sample", "soil-evaluate"}


@pytest.mark.parametrize("line,says", [("predict --windw 3 a.ckpt b.tif", "--window"), ("predict", "Missing argument"),
                                       ("soil-sample x.tif -n many", "-n"), ("nosuch", "No such command")])
def test_a_mistyped_command_line_is_one_line_exit_2(line, says):
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "-m", "geotool", *line.split()], capture_output=True, text=True)
    assert res.returncode == 2 and res.stdout == ""
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and says in lines[0] and " -h'" in lines[0], res.stderr

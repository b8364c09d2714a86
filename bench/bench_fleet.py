"""Batches of scenes: Dask workers vs the one-process loop, and keep-going / --skip-existing at 100 scenes.

Usage:
    python bench/bench_fleet.py [--scenes 40] [--size 512] [--corrupt-scenes 100]

Scenes are synthetic uint16 RGB GeoTIFFs (squares on texture); the model is a light random-weight Unet
(resnet18 encoder, depth 3), so the figures are geotool's per-scene work: reading, the forward pass,
writing. Throughput is counted between the first and the last finished scene, so starting the workers
(imports, model load) is reported apart from it. Prints the conditions (cores, threads, load) first.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from segmentation_helpers import make_scene, write_checkpoint  # noqa: E402

from geotool.batch import BatchOptions  # noqa: E402
from geotool.segmentation.predict import PredictConfig, run_predict  # noqa: E402


def run(model: Path, scenes: Path, out: Path, options: BatchOptions, threads: int) -> dict:
    """One batch; wall time, and scenes/s between the first and the last finished scene."""
    stamps: list[float] = []
    cfg = PredictConfig(model=str(model), rasters=[str(scenes)], output=str(out), preview=False, threads=threads)
    start = time.perf_counter()
    res = run_predict(cfg, options, on_outcome=lambda o: stamps.append(time.perf_counter()))
    wall = time.perf_counter() - start
    n = len(stamps)
    steady = (n - 1) / (stamps[-1] - stamps[0]) if n > 1 else float("nan")
    return {"wall": wall, "first": stamps[0] - start, "rate": steady, "batch": res["batch"]}


def pixels(folder: Path) -> dict[str, bytes]:
    import rasterio

    out = {}
    for p in sorted(folder.glob("*_classes.tif")):
        with rasterio.open(p) as ds:
            out[p.name] = ds.read().tobytes()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenes", type=int, default=40)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--corrupt-scenes", type=int, default=100)
    args = parser.parse_args()
    import torch

    print(f"conditions: {os.cpu_count()} cores, torch {torch.__version__} default threads {torch.get_num_threads()}, "
          f"load average {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = write_checkpoint(tmp / "model.ckpt")
        scenes = tmp / "scenes"
        scenes.mkdir()
        for i in range(args.scenes):
            make_scene(scenes / f"s{i:03d}.tif", height=args.size, width=args.size, seed=i)
        print(f"\n{args.scenes} scenes of {args.size} x {args.size} (uint16 RGB), window 64")
        rows = {}
        runs = (("one process", BatchOptions(), 1), ("dask local:1", BatchOptions(scheduler="local:1"), 1),
                ("dask local:2", BatchOptions(scheduler="local:2"), 1),
                ("one process", BatchOptions(), 0), ("dask local:1", BatchOptions(scheduler="local:1"), 0),
                ("dask local:2", BatchOptions(scheduler="local:2"), 0))
        default_threads = torch.get_num_threads()
        for name, options, threads in runs:
            torch.set_num_threads(threads or default_threads)  # --threads 0 keeps what an earlier run here set
            label = f"{name}, {'1 torch thread' if threads else 'default threads'}"
            folder = tmp / label.replace(" ", "_").replace(",", "").replace(":", "")
            r = rows[label] = run(model, scenes, folder, options, threads)
            r["folder"] = folder
            print(f"  {label:36s} wall {r['wall']:6.1f} s  first scene after {r['first']:5.1f} s  "
                  f"{r['rate']:.2f} scenes/s  load {os.getloadavg()[0]:.2f}", flush=True)
        for kind in ("1 torch thread", "default threads"):
            one, d1, d2 = (rows[f"{n}, {kind}"]["rate"] for n in ("one process", "dask local:1", "dask local:2"))
            print(f"  {kind}: dask local:1 / one process {d1 / one:.2f}x (target >= 0.9); "
                  f"dask local:2 / dask local:1 {d2 / d1:.2f}x (target >= 1.7); dask local:2 / one process {d2 / one:.2f}x")
        same = pixels(rows["one process, 1 torch thread"]["folder"]) == pixels(rows["dask local:2, 1 torch thread"]["folder"])
        print(f"  dask local:2 class rasters identical to the one-process run: {same}")
        print("  (default threads: one process and a single worker use every core; each of 2 workers one)")

        n, size = args.corrupt_scenes, 256
        many = tmp / "many"
        many.mkdir()
        for i in range(n):
            make_scene(many / f"m{i:03d}.tif", height=size, width=size, seed=i)
        for i in sorted({n // 13, n // 2, n - 7}):
            bad = many / f"m{i:03d}.tif"
            bad.write_bytes(bad.read_bytes()[: bad.stat().st_size // 2])
        print(f"\n{n} scenes of {size} x {size}, 3 truncated; one process, 2 threads")
        out = tmp / "many_out"
        torch.set_num_threads(default_threads)
        first = run(model, many, out, BatchOptions(), 2)
        statuses = [o.status for o in first["batch"].outcomes]
        print(f"  first run: {first['wall']:.1f} s, done {statuses.count('done')}, failed {statuses.count('failed')}")
        again = run(model, many, out, BatchOptions(skip_existing=True), 2)
        statuses = [o.status for o in again["batch"].outcomes]
        print(f"  rerun --skip-existing: {again['wall']:.1f} s, skipped {statuses.count('skipped')}, "
              f"failed {statuses.count('failed')}; {again['wall'] / first['wall']:.3f}x the first run (target < 0.1)")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()

"""soil-sample at the maxvol paper's field size: peak memory and wall time of the default features.

Writes 4 smooth synthetic covariate GeoTIFFs of SIZE x SIZE float32 cells (default 5700 x 5700 =
3.249e7 cells, the Kshen field of arXiv:2103.10337 at its full resolution), then runs the whole
``soil-sample`` pipeline (read, candidates, features, maxvol, write) in a fresh Python process per case and
reads that process's peak RSS (``ru_maxrss``) and wall time (after imports). Cases, all measured in this run:

- default (kernel) features, N = 30 and N = 100 (target: under 8 GB peak RSS and under 2 min each);
- the baseline: linear (paper) features, N = 30, at the same size (the issue's scaling reference:
  45 s, 6.3 GB before this change); ratios default / linear are printed;
- default features on a 1/16 subgrid (1425 x 1425): memory should not grow with cells x 2N;
- default features with ``--match-marginals 2``, N = 30 (same targets).

Usage: python bench/bench_soil_scale.py [--size 5700] [--tmp /tmp]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, {root!r})
from pathlib import Path
from geotool.soil.design import SoilSampleConfig, run_soil_sample
cfg = SoilSampleConfig(covariates=[Path(p) for p in {paths!r}], n={n}, output=Path({out!r}), features={features!r}, match_marginals={match}, seed=0)
t0 = time.perf_counter()
res = run_soil_sample(cfg)
dt = time.perf_counter() - t0
print(json.dumps(dict(seconds=dt, peak_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      cells=res.n_candidates, points=len(res.points), log_det=res.log_det)))
"""


def write_covariates(folder: Path, size: int) -> list[Path]:
    import rasterio
    from affine import Affine

    transform = Affine(5.0, 0, 4_000_000.0, 0, -5.0, 6_700_000.0)  # 5 m cells, EPSG:3857 like Kshen
    paths = []
    rng = np.random.default_rng(0)
    for i in range(4):
        path = folder / f"cov{i}.tif"
        fx, fy, ph = rng.uniform(2, 9, 3)
        profile = dict(driver="GTiff", width=size, height=size, count=1, dtype="float32", crs="EPSG:3857",
                       transform=transform, nodata=-9999.0, tiled=True, blockxsize=512, blockysize=512)
        with rasterio.open(path, "w", **profile) as dst:
            for r0 in range(0, size, 512):
                h = min(512, size - r0)
                yy, xx = np.mgrid[r0 : r0 + h, 0:size] / size
                block = np.sin(fx * xx + ph) * np.cos(fy * yy) + (i + 1) * xx * yy + rng.normal(0, 0.05, (h, size))
                if i == 0:
                    block = np.exp(2 * block)  # one skewed covariate
                dst.write(block.astype(np.float32)[None], window=((r0, r0 + h), (0, size)))
        paths.append(path)
    return paths


def run_case(paths: list[Path], n: int, features: str, out: Path, match: int = 0) -> dict:
    code = CHILD.format(root=str(ROOT), paths=[str(p) for p in paths], n=n, out=str(out), features=features,
                        match=match)
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "2"))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr else f"exit {proc.returncode}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=5700)
    parser.add_argument("--tmp", type=Path, default=Path(tempfile.gettempdir()))
    args = parser.parse_args()
    print(f"threads OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '2')}, cpus {os.cpu_count()}, "
          f"load average at start {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        (tmp / "big").mkdir()
        big = write_covariates(tmp / "big", args.size)
        small_size = args.size // 4
        (tmp / "small").mkdir()
        small = write_covariates(tmp / "small", small_size)
        print(f"wrote 4 x {args.size}^2 and 4 x {small_size}^2 float32 covariates in {time.perf_counter() - t0:.0f} s")
        results = {}
        for label, paths, n, features, match in [
            ("linear N=30 (baseline)", big, 30, "linear", 0),
            ("kernel N=30", big, 30, "kernel", 0),
            ("kernel N=100", big, 100, "kernel", 0),
            (f"kernel N=100, {small_size}^2", small, 100, "kernel", 0),
            ("kernel N=30 --match-marginals 2", big, 30, "kernel", 2),
        ]:
            res = run_case(paths, n, features, tmp / f"out_{len(results)}.gpkg", match)
            results[label] = res
            load = os.getloadavg()[0]
            if "error" in res:
                print(f"{label}: FAILED {res['error']} (load {load:.2f})")
                continue
            print(f"{label}: {res['cells']:,} cells, {res['points']} points, {res['seconds']:.1f} s, "
                  f"peak RSS {res['peak_mb'] / 1024:.2f} GB (load average {load:.2f})")
        base = results.get("linear N=30 (baseline)", {})
        for label in ("kernel N=30", "kernel N=100", "kernel N=30 --match-marginals 2"):
            res = results.get(label, {})
            if "seconds" in res and "seconds" in base:
                print(f"{label} / linear N=30: time x{res['seconds'] / base['seconds']:.2f}, "
                      f"peak RSS x{res['peak_mb'] / base['peak_mb']:.2f}; against the targets (2 min, 8 GB): "
                      f"x{res['seconds'] / 120:.2f}, x{res['peak_mb'] / 8192:.2f}")
        small_res = results.get(f"kernel N=100, {small_size}^2", {})
        if "peak_mb" in small_res and "peak_mb" in results.get("kernel N=100", {}):
            print(f"kernel N=100 peak RSS, 16x the cells: x{results['kernel N=100']['peak_mb'] / small_res['peak_mb']:.2f}")


if __name__ == "__main__":
    main()

"""Speed and memory of maxvol selection, and of the whole soil-sample command.

Prints, each measured in this run:
1. 30 points from 1,000,000 cells x 8 features: geotool's maxvol vs a plain NumPy maxvol (pivoted-QR
   start, square maxvol recomputing B = A inv(A_S) every swap, then rectangular maxvol re-stacking the
   chosen rows and recomputing its coefficient matrix C = A pinv(A_S) every step); ratio = speed-up.
   Then the rectangular phase alone, both from the same square-maxvol rows (they must pick the same rows).
2. Peak traced memory of geotool's selection vs the size of A (float32): O(cells x features).
3. 100 points from 1,000,000 cells.
4. The whole soil-sample pipeline on the Kshen field (301 x 194, data_samples), after imports,
   against the 2 s target; and whether `geotool --help` imports torch.

Usage: python bench/bench_soil_maxvol.py [--cells 1000000] [--features 8]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from geotool.soil.maxvol import maxvol_select  # noqa: E402


def reference_square_maxvol(A: np.ndarray, tol: float = 1.01, max_swaps: int = 160) -> list[int]:
    """Plain NumPy square maxvol: start rows from pivoted QR of A^T, recompute B = A inv(A_S) every swap."""
    from scipy.linalg import qr

    r = A.shape[1]
    _, _, piv = qr(A.T, pivoting=True, mode="economic")
    rows = list(piv[:r])
    for _ in range(max_swaps):
        B = A @ np.linalg.inv(A[rows])
        i, k = np.unravel_index(np.argmax(np.abs(B)), B.shape)
        if abs(B[i, k]) <= tol:
            break
        rows[k] = int(i)
    return rows


def reference_rect_maxvol(A: np.ndarray, start: list[int], n: int) -> list[int]:
    """Plain NumPy rectangular maxvol: re-stack A_S and recompute C = A pinv(A_S) at every step."""
    rows = list(start)
    chosen = np.zeros(len(A), bool)
    chosen[rows] = True
    while len(rows) < n:
        coeff = A @ np.linalg.pinv(A[rows])  # cells x |S|: the coefficient matrix, rebuilt each step
        lev = np.einsum("ij,ij->i", coeff, coeff)
        lev[chosen] = -np.inf
        i = int(np.argmax(lev))
        rows.append(i)
        chosen[i] = True
    return rows


def timed(fn, repeat: int = 1):
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cells", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=8)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    A = rng.standard_normal((args.cells, args.features)).astype(np.float32)
    r = args.features

    from geotool.soil.maxvol import design_log_det

    t_ours, sel = timed(lambda: maxvol_select(A, 30), repeat=2)
    t_ref, ref_rows = timed(lambda: reference_rect_maxvol(A, reference_square_maxvol(A), 30))
    print(f"30 of {args.cells:,} x {r}: geotool {t_ours:.2f} s, plain NumPy reference {t_ref:.2f} s, "
          f"speed-up x{t_ref / t_ours:.1f}; log det geotool {sel.log_det:.3f}, reference "
          f"{design_log_det(A, np.array(ref_rows)):.3f}")
    # the rectangular phase alone, both from geotool's square-maxvol rows (so both must pick the same rows)
    start = sel.rows[:r].tolist()
    t_square, _ = timed(lambda: maxvol_select(A, r), repeat=2)
    t_ref_rect, rect_rows = timed(lambda: reference_rect_maxvol(A, start, 30))
    print(f"  rectangular phase only (22 rows): geotool {t_ours - t_square:.2f} s, reference {t_ref_rect:.2f} s, "
          f"speed-up x{t_ref_rect / (t_ours - t_square):.1f}, same rows: {sorted(rect_rows) == sorted(sel.rows.tolist())}")

    tracemalloc.start()
    maxvol_select(A, 30)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"peak memory of the selection {peak / 2**20:.0f} MiB = x{peak / A.nbytes:.2f} the float32 matrix "
          f"({A.nbytes / 2**20:.0f} MiB); a cells x N float32 coefficient matrix would be "
          f"{args.cells * 30 * 4 / 2**20:.0f} MiB")

    t100, sel100 = timed(lambda: maxvol_select(A, 100))
    print(f"100 of {args.cells:,} x {r}: {t100:.2f} s ({len(set(sel100.rows.tolist()))} distinct rows)")

    from geotool.soil.design import SoilSampleConfig, run_soil_sample

    soil = ROOT / "data_samples" / "soil"
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        base = dict(covariates=[soil / "slope.tif", soil / "aspect.tif", soil / "wetnessindex.tif"], dem=soil / "dem.tif",
                    n=20, min_distance=30.0)
        run_soil_sample(SoilSampleConfig(**base, output=Path(tmp) / "warm.gpkg"))  # imports and caches
        t_cmd, _ = timed(lambda: run_soil_sample(SoilSampleConfig(**base, output=Path(tmp) / "p.gpkg")), repeat=3)
        t_twi, _ = timed(lambda: run_soil_sample(SoilSampleConfig(**base, terrain=["slope", "aspect", "curvature", "twi"],
                                                                  output=Path(tmp) / "q.gpkg")), repeat=3)
    print(f"soil-sample on the 301 x 194 Kshen field, 4 layers, 20 points, 30 m apart: {t_cmd:.2f} s "
          f"(x{t_cmd / 2.0:.2f} of the 2 s target); with --terrain slope,aspect,curvature,twi: {t_twi:.2f} s "
          f"(x{t_twi / 2.0:.2f})")

    probe = ("import sys, runpy; sys.argv=['geotool','--help']\ntry:\n    runpy.run_module('geotool', run_name='__main__')\n"
             "except SystemExit:\n    pass\nprint('torch imported:', 'torch' in sys.modules, file=sys.stderr)")
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT)
    print(f"geotool --help: {time.perf_counter() - t0:.2f} s, {done.stderr.strip()}")


if __name__ == "__main__":
    main()

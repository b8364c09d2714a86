"""NIR that transfers: leave-one-date-out over the six NAIP dates of one tile.

For each date: train-nir on the other five dates (train-nir's own split: west 70% of each scene trains,
east 30% validates), generate the held-out date, and score its east 30% with evaluate-nir against
per-pixel gradient boosting fitted on the same five dates' west 70% (the baseline: what a user without
the target's NIR could do) and on the target's own west 70% (the oracle: how predictable the date is).

Targets (issue 19): generator MAE / baseline MAE <= 0.6 in the mean over the folds and <= 0.8 in every
fold; generator SSIM above the baseline's in every fold.

Conditions (``--conditions``, comma-separated, each ``HARMONISE`` or ``HARMONISE:JITTER``): train-nir's
``--harmonise`` (none, moments, histogram) and ``--color-jitter`` strength; every condition runs every fold.

Usage:
    OMP_NUM_THREADS=1 nice -n 5 python bench/bench_nir_transfer.py --steps 300 --threads 1 \
        --conditions none,moments,histogram,moments:0.5 --out /tmp/bench_nir_transfer
    (--folds 2009,2018 runs only those held-out dates; --steps 20 checks the plumbing in a few minutes)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_nir_quality import generator_args, sh  # noqa: E402


def date_of(path: Path) -> str:
    """``m_4709963_se_14_1_20090818.tif`` -> ``2009``."""
    return path.stem.rsplit("_", 1)[-1][:4]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="/work/shared/data/nir")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--folds", default="", help="held-out years to run (default: all six)")
    ap.add_argument("--train-args", default="", help="extra train-nir flags, e.g. '--gan-weight 0'")
    ap.add_argument("--conditions", default="none,moments,histogram", help="HARMONISE[:JITTER] per condition, comma-separated")
    ap.add_argument("--tta", action="store_true")
    ap.add_argument("--out", default="/tmp/bench_nir_transfer")
    a = ap.parse_args()
    import torch

    scenes = sorted(Path(a.data).glob("*.tif"))
    folds = [s for s in scenes if not a.folds or date_of(s) in a.folds.split(",")]
    print(f"conditions: {os.cpu_count()} cores, train/generate threads {a.threads}, torch {torch.__version__}, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, load average {os.getloadavg()[0]:.2f}; "
          f"{a.steps} steps per fold (window 128, ngf 32, depth 6, batch 4), seed {a.seed}; "
          f"dates {', '.join(date_of(s) for s in scenes)}")
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    common = [*generator_args(a.steps, a.threads, a.seed, a.lr), "--nir-band", 4, "--rgb-bands", "1,2,3",
              *a.train_args.split()]
    results = {}
    for condition in a.conditions.split(","):
        harmonise, _, jitter = condition.partition(":")
        flags = ["--harmonise", harmonise, "--color-jitter", jitter or 0]
        print(f"condition {condition}: train-nir {' '.join(map(str, flags))}", flush=True)
        results[condition] = [run_fold(target, scenes, out / condition.replace(":", "_jitter"), [*common, *flags], a)
                              for target in folds]
        table(results[condition])
    if len(results) > 1:
        print("\n| condition | mean ratio | worst ratio | folds <= 0.8 | SSIM above GB |")
        print("|---|---|---|---|---|")
        for condition, rows in results.items():
            ratios = [r["ratio"] for r in rows]
            print(f"| {condition} | {sum(ratios) / len(ratios):.2f} | {max(ratios):.2f} | {sum(x <= 0.8 for x in ratios)} of {len(rows)} "
                  f"| {sum(r['model_ssim'] > r['gb_ssim'] for r in rows)} of {len(rows)} |")
    (out / "summary.json").write_text(json.dumps(results, indent=1))


def run_fold(target: Path, scenes: list[Path], out: Path, train_flags: list, a) -> dict:
    """Train on every scene but ``target``, generate ``target``, score its east 30% against GB on the same
    five dates and GB on the target's own west (oracle)."""
    year = date_of(target)
    train = [s for s in scenes if s != target]
    run = out / f"without_{year}"
    t = time.perf_counter()
    sh("train-nir", *train, "--output", run, *train_flags)
    train_s = time.perf_counter() - t
    gen = out / f"{year}_nir.tif"
    sh("generate-nir", run / "model.ckpt", target, "--output", gen, "--threads", a.threads, "--tta" if a.tta else "--no-tta")
    domain = json.loads(Path(f"{gen}.json").read_text())["results"].get("domain", {})
    metrics = out / f"{year}_metrics.json"
    extra = [x for s in train for x in ("--baseline-train", s)]
    sh("evaluate-nir", gen, target, "--output", metrics, "--region", "east", "--baseline", "gb", *extra,
       "--nir-band", 4, "--seed", a.seed)
    m = json.loads(metrics.read_text())
    row = {"held_out": year, "model_mae": m["model"]["mae"], "gb_mae": m["gb"]["mae"], "oracle_mae": m["gb_oracle"]["mae"],
           "model_ssim": m["model"]["ssim"], "gb_ssim": m["gb"]["ssim"], "train_seconds": round(train_s, 1),
           "distance": domain.get("distance"), "harmonised_distance": domain.get("harmonised", {}).get("distance")}
    row["ratio"] = row["model_mae"] / row["gb_mae"]
    print(f"  held out {year}: generator MAE {row['model_mae']:.4f}, GB (five dates) {row['gb_mae']:.4f} "
          f"-> {row['ratio']:.2f}x (target <= 0.8); oracle GB (its own west) {row['oracle_mae']:.4f}; "
          f"SSIM {row['model_ssim']:.3f} vs {row['gb_ssim']:.3f}; domain distance {row['distance']} "
          f"(harmonised {row['harmonised_distance']}); trained in {train_s:.0f} s; load {os.getloadavg()[0]:.2f}", flush=True)
    return row


def table(rows: list[dict]) -> None:
    """The per-fold markdown table and the targets' summary line."""
    print("\n| held-out date | generator MAE | GB five dates MAE | ratio | GB oracle MAE | generator SSIM | GB SSIM | distance (harmonised) |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        hd = f" ({r['harmonised_distance']:.3f})" if r.get("harmonised_distance") is not None else ""
        print(f"| {r['held_out']} | {r['model_mae']:.4f} | {r['gb_mae']:.4f} | {r['ratio']:.2f} | {r['oracle_mae']:.4f} "
              f"| {r['model_ssim']:.3f} | {r['gb_ssim']:.3f} | {r['distance']:.3f}{hd} |")
    mean = sum(r["ratio"] for r in rows) / len(rows)
    print(f"mean ratio {mean:.2f} (target <= 0.6); worst {max(r['ratio'] for r in rows):.2f} (target <= 0.8); "
          f"SSIM above the baseline in {sum(r['model_ssim'] > r['gb_ssim'] for r in rows)} of {len(rows)} folds", flush=True)


if __name__ == "__main__":
    main()

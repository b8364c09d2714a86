"""OBA gain on real buildings: the same model trained the same steps with and without on-the-fly OBA.

SpaceNet-7 mosaic (``../shared/data/buildings``), one fixed spatial block split (``--split-seed``); each
run trains ``train-segmentation`` with ``--workers 1`` and is scored (foreground IoU / F1) on the held-out
blocks after tiled prediction of the whole scene. Baseline = the same arch and seed without OBA, in the
same process. Per-epoch slowdown = OBA training wall time / plain training wall time, same arch and seed.

Results are appended to ``OUT/results.jsonl`` as runs finish and finished runs are skipped on a rerun,
so the bench can be resumed. Every variant's settings are the ``geotool/configs/oba.yaml`` defaults plus the
override in its name.

    nice -n 10 python bench/bench_oba_gain.py --steps 300 --seeds 0,1,2 --archs Unet,FPN --out /tmp/oba_gain
    nice -n 10 python bench/bench_oba_gain.py --steps 300 --seeds 0 --archs Unet --ablations --out /tmp/oba_gain
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from heldout import train_and_score  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "buildings"

# name -> overrides of the OBA config (None = no OBA)
MAIN = {"plain": None, "oba": {}}
ABLATIONS = {  # one change per main knob against geotool/configs/oba.yaml (hard paste, 3-10 objects, no shadows, p 0.6)
    "oba blend=gaussian": {"blend": "gaussian"},
    "oba n_objects=1-3": {"n_objects": [1, 3]},
    "oba n_objects=10-20": {"n_objects": [10, 20]},
    "oba shadows": {"shadows": {"enabled": True}},
    "oba p=1.0": {"probability": 1.0},
}


def run_config(args, variant: str, overrides, arch: str, seed: int, out: Path):
    from geotool.config import load_config
    from geotool.io.files import read_yaml
    from geotool.segmentation.config import SegmentationConfig

    oba = None
    if overrides is not None:
        oba = read_yaml(ROOT / "configs" / "oba.yaml")
        for k, v in overrides.items():
            oba[k] = {**oba[k], **v} if isinstance(v, dict) else v
    return load_config(SegmentationConfig, None, {
        "images": [args.image], "labels": [args.labels], "output": str(out), "arch": arch, "seed": seed,
        "split_seed": args.split_seed, "max_steps": args.steps, "steps_per_epoch": max(1, args.steps // 4),
        "window": args.window, "block": 2 * args.window, "batch_size": args.batch_size, "threads": 2,
        "workers": 1, "accelerator": "cpu", "oba": oba, "bands": [1, 2, 3],  # the 4th band is a constant alpha
    }, preset="buildings")


def summarize(rows: list[dict]) -> None:
    by = {}
    for r in rows:
        by.setdefault((r["arch"], r["variant"]), []).append(r)
    plain_time = {(r["arch"], r["seed"]): r["train_s"] for r in rows if r["variant"] == "plain"}
    print(f"\n{'arch':8} {'variant':22} {'seeds':>5} {'IoU mean +- sd':>16} {'F1 mean +- sd':>16} {'dF1 vs plain':>13} {'time/plain':>10}")
    for (arch, variant), rs in sorted(by.items()):
        iou, f1 = np.array([r["iou"] for r in rs]), np.array([r["f1"] for r in rs])
        base = [b["f1"] for b in by.get((arch, "plain"), []) if b["seed"] in {r["seed"] for r in rs}]
        d = f"{f1.mean() - np.mean(base):+.3f}" if base and variant != "plain" else ""
        times = [r["train_s"] / plain_time[(arch, r["seed"])] for r in rs if (arch, r["seed"]) in plain_time]
        tr = f"{np.mean(times):.2f}" if times and variant != "plain" else ""
        print(f"{arch:8} {variant:22} {len(rs):5d} {iou.mean():7.3f} +- {iou.std():.3f} {f1.mean():7.3f} +- {f1.std():.3f} {d:>13} {tr:>10}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--image", default=str(DATA / "SN7_mosaic_clipped.tif"))
    ap.add_argument("--labels", default=str(DATA / "SN7_Buildings.geojson"))
    ap.add_argument("--archs", default="Unet,FPN")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--window", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--split-seed", type=int, default=0)
    ap.add_argument("--ablations", action="store_true", help="also run the ablation variants")
    ap.add_argument("--variants", default=None, help="only these variants (names, separated by ';')")
    ap.add_argument("--out", default="/tmp/oba_gain")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(2)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = out / "results.jsonl"
    rows = [json.loads(line) for line in results.read_text().splitlines()] if results.exists() else []
    done = {(r["variant"], r["arch"], r["seed"], r["steps_budget"]) for r in rows}
    variants = {**MAIN, **ABLATIONS} if args.ablations else MAIN
    if args.variants:
        variants = {k: v for k, v in {**MAIN, **ABLATIONS}.items() if k in args.variants.split(";")}
    for arch in args.archs.split(","):
        for seed in [int(s) for s in args.seeds.split(",")]:
            for variant, overrides in variants.items():
                if (variant, arch, seed, args.steps) in done:
                    continue
                run_dir = out / f"{arch}_{variant.replace(' ', '_').replace('=', '')}_s{seed}"
                cfg = run_config(args, variant, overrides, arch, seed, run_dir)
                r = train_and_score(cfg)
                row = {"variant": variant, "arch": arch, "seed": seed, "steps_budget": args.steps, "steps": r["steps"],
                       "iou": r["iou"], "f1": r["f1"], "train_s": r["train_s"], "heldout_pixels": r["heldout_pixels"]}
                print(json.dumps(row), flush=True)
                with results.open("a") as f:
                    f.write(json.dumps(row) + "\n")
                rows.append(row)
    summarize([r for r in rows if r["steps_budget"] == args.steps])


if __name__ == "__main__":
    main()

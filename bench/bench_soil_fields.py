"""Sampling designs on two real fields, each scored as a percentile among random designs (issue #18).

Fields (candidates = cells valid in every covariate and target layer):

- Kshen (data_samples/soil, 301 x 194, 5 m): elevation + slope, aspect (sin, cos), curvature, TWI derived
  from the DEM; metrics as in bench_soil_design.py: mean 1-D Wasserstein / sd of the covariates, and RMSE
  of a ridge model fitted on the N cells predicting NDVI (left out of the features) at every cell.
- Xuancheng (../shared/data/soil_xuancheng, 558 x 418, 200 m; D. J. Brus, Spatial Sampling with R, CC BY
  4.0): the 7 covariates; metrics: map RMSE of a random forest and of a linear (ridge) model fitted on the
  N cells, target som_rf_map.tif and, separately, som_ked_map.tif; mean 1-D Wasserstein / sd.

Each design's score is its percentile among R random designs of the same N (share of random designs that
score worse; 100 = better than all of them, 50 = the random median). Methods: soil-sample's default
(maxvol), cLHS, k-means, each with 3 seeds (maxvol's seed drives its k-means landmarks), plus any named
variant (``--variants``). A k-means design at N = 50 is also scored under 10 forest seeds: how
far a percentile moves with nothing but the forest's randomness. Part 2: the real-point protocol on
Xuancheng's 183 measured points through soil-evaluate (``--fields none`` runs it alone).

Speed (the whole bench on 2 cores in minutes): random forests have ``--trees`` trees (default 25; the
RMSE spread across forest seeds for one design is printed next to the spread across random designs, which
is what a percentile measures) and are scored on ``--eval-cells`` seeded random cells (default 20,000 of
113,847; the linear model and the Wasserstein distances use every cell). Wasserstein distances are the
exact quantile-function form against the sorted population, vectorised. Random-design scores are cached
in ``--cache`` so variants can be compared without recomputing them.

Variants: a named one (``VARIANTS``, e.g. "rank (old default)") or kernel maxvol options joined by '+'
(``parse_variant``: "normal+bw0.42", "robust+r5+xy", "normal+Lx2+bw0.35"). ``--seeds`` / ``--seed-offset``
choose the method seeds (held-out seeds: ``--seed-offset 3``); ``--no-baselines`` skips cLHS and k-means.

Usage: python bench/bench_soil_fields.py [--random 200] [--sizes 10,20,30,50,75,100] [--variants a,b]
       [--seeds 3] [--seed-offset 0] [--no-baselines] [--fields kshen,xuancheng|none] [--repeats 100]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from geotool.io.raster import read_stack  # noqa: E402
from geotool.soil.baselines import clhs_design, kmeans_design  # noqa: E402
from geotool.soil.features import design_matrix  # noqa: E402
from geotool.soil.terrain import terrain_layers  # noqa: E402

XUANCHENG = ["dem", "slope", "twi", "plan_curvature", "profile_curvature", "temperature", "precipitation"]


@dataclass
class Field:
    name: str
    X: np.ndarray  # (cells, covariates) standardised
    names: list[str]
    targets: dict[str, np.ndarray]
    models: list[str]  # "ridge" and/or "rf"
    coords: np.ndarray
    eval_rows: np.ndarray = field(default_factory=lambda: np.empty(0, int))


def load_kshen(soil: Path) -> Field:
    dem = read_stack(soil / "dem.tif", dtype="float64")
    ndvi = read_stack([soil / "dem.tif", soil / "ndvi.tif"], resample="bilinear", dtype="float64")
    z = np.where(dem.valid, dem.data[0], np.nan)
    layers = {"elevation": z, **terrain_layers(z, dem.grid, ["slope", "aspect", "curvature", "twi"])}
    target = np.where(ndvi.valid, ndvi.data[1], np.nan)
    stack = np.stack(list(layers.values()))
    ok = np.all(np.isfinite(stack), axis=0) & np.isfinite(target)
    rows, cols = np.nonzero(ok)
    X, _, names = design_matrix(stack[:, rows, cols].T, list(layers))
    return Field("Kshen", X[:, 1:].astype(np.float64), names[1:], {"NDVI": target[rows, cols]}, ["ridge"],
                 np.column_stack([cols * 5.0, -rows * 5.0]))


def load_xuancheng(folder: Path) -> Field:
    cov = read_stack([folder / f"{n}.tif" for n in XUANCHENG], dtype="float64")
    tgt = read_stack([folder / "som_rf_map.tif", folder / "som_ked_map.tif"], dtype="float64")
    ok = cov.valid & tgt.valid & np.all(np.isfinite(cov.data), axis=0) & np.all(np.isfinite(tgt.data), axis=0)
    rows, cols = np.nonzero(ok)
    X, report, names = design_matrix(cov.data[:, rows, cols].T, XUANCHENG)
    targets = {"som_rf_map": tgt.data[0, rows, cols], "som_ked_map": tgt.data[1, rows, cols]}
    return Field("Xuancheng", X[:, 1:].astype(np.float64), names[1:], targets, ["rf", "ridge"],
                 np.column_stack([cols * 200.0, -rows * 200.0]))


class Scorer:
    """Every metric of one design on one field; lower is better for all of them."""

    def __init__(self, fld: Field, trees: int, eval_cells: int) -> None:
        self.f = fld
        self.trees = trees
        cells = len(fld.X)
        rng = np.random.default_rng(12345)
        self.eval_rows = np.sort(rng.choice(cells, min(eval_cells, cells), replace=False))
        self.sorted_pop = np.sort(fld.X, axis=0)
        # midpoint quantile levels of the population cells: exact W1 against the population's step function
        self.u = (np.arange(cells) + 0.5) / cells
        self.names = ["W/sd"] + [f"{m} {t}" for m in fld.models for t in fld.targets]

    def wasserstein(self, rows: np.ndarray) -> float:
        n = len(rows)
        sample = np.sort(self.f.X[rows], axis=0)
        idx = np.minimum((self.u * n).astype(np.int64), n - 1)
        # covariates are standardised, so W1 is already W1 / sd
        return float(np.mean(np.abs(sample[idx] - self.sorted_pop)))

    def score(self, rows: np.ndarray, rf_seed: int = 0) -> np.ndarray:
        from sklearn.ensemble import RandomForestRegressor
        from sklearn.linear_model import Ridge

        X = self.f.X
        out = [self.wasserstein(rows)]
        for model in self.f.models:
            for y in self.f.targets.values():
                if model == "ridge":
                    pred = Ridge(alpha=1.0).fit(X[rows], y[rows]).predict(X)
                    out.append(float(np.sqrt(np.mean((pred - y) ** 2))))
                else:
                    rf = RandomForestRegressor(self.trees, random_state=rf_seed, n_jobs=1).fit(X[rows], y[rows])
                    e = self.eval_rows
                    out.append(float(np.sqrt(np.mean((rf.predict(X[e]) - y[e]) ** 2))))
        return np.asarray(out)


def random_scores(scorer: Scorer, n: int, count: int, cache: Path | None) -> np.ndarray:
    key = hashlib.sha1(f"{scorer.f.name}-{n}-{count}-{scorer.trees}-{len(scorer.eval_rows)}-v1".encode()).hexdigest()[:12]
    path = cache / f"soil_fields_{key}.npy" if cache else None
    if path is not None and path.exists():
        return np.load(path)
    rng = np.random.default_rng(1000 + n)
    cells = len(scorer.f.X)
    scores = np.array([scorer.score(rng.choice(cells, n, replace=False), rf_seed=i) for i in range(count)])
    if path is not None:
        np.save(path, scores)
    return scores


def percentile(values: np.ndarray, randoms: np.ndarray) -> np.ndarray:
    """Per metric: share (%) of random designs with a worse (higher) score."""
    return 100.0 * np.mean(randoms > values[None, :], axis=0)


# -- methods: (X, n, seed) -> rows --------------------------------------------------------------------


def _kernel(X: np.ndarray, n: int, seed: int, **kw) -> np.ndarray:
    from geotool.soil.design import kernel_maxvol

    return kernel_maxvol(X, n, seed=seed, **kw)[0]


def m_default(fld: Field, n: int, seed: int) -> np.ndarray:
    return _kernel(fld.X, n, seed)


def m_clhs(fld: Field, n: int, seed: int) -> np.ndarray:
    return clhs_design(fld.X, n, np.random.default_rng(seed), iterations=5000)


def m_kmeans(fld: Field, n: int, seed: int) -> np.ndarray:
    return kmeans_design(fld.X, n, np.random.default_rng(seed))


METHODS: dict[str, Callable[[Field, int, int], np.ndarray]] = {
    "maxvol (default)": m_default,
    "cLHS": m_clhs,
    "k-means": m_kmeans,
}
def _kv(**kw):
    def fn(fld: Field, n: int, seed: int) -> np.ndarray:
        # the variants of the first study (before issue #18's robustness study): rank space, bandwidth 0.5
        opts = {"space": "rank", "bandwidth": 0.5, **kw}
        ratio = opts.pop("ratio", 2.0)
        return _kernel(fld.X, n, seed, landmarks=max(1, int(round(ratio * n))), **opts)
    return fn


VARIANTS: dict[str, Callable[[Field, int, int], np.ndarray]] = {
    "normal (#18 first default)": lambda fld, n, seed: _kernel(fld.X, n, seed, space="normal", bandwidth=0.42),
    "rank (old default)": _kv(ratio=1.0),  # the default before the robustness study: rank space, L=N, bw 0.5
    "L=2N": _kv(ratio=2.0),  # the default before this study
    "L=N": _kv(ratio=1.0),
    "L=4N": _kv(ratio=4.0),
    "bw=1": _kv(bandwidth=1.0),
    "bw=0.3": _kv(bandwidth=0.3),
    "z-space": _kv(space="standard"),
    "L=N+bw=1": _kv(ratio=1.0, bandwidth=1.0),
    "refine5": _kv(refine=5),
    "L=N+refine5": _kv(ratio=1.0, refine=5),
    "z+refine5": _kv(space="standard", refine=5),
    "refine20": _kv(refine=20),
}


def _with_xy(fld: Field) -> np.ndarray:
    c = fld.coords
    return np.column_stack([fld.X, (c - c.mean(0)) / c.std(0)])


def parse_variant(name: str) -> Callable[[Field, int, int], np.ndarray]:
    """A named variant, or kernel maxvol options joined by '+': a space (hybrid, normal, rank, standard, robust),
    rK (K refinement rounds), mK (K marginal-matching rounds), linW (linear block of weight W), nn (nearest-neighbour
    landmark spacing), bwX (bandwidth X), LxR (R x N landmarks), clipC (z-score clip), xy (cell coordinates as
    covariates), blendW (the hybrid space with weight W on the z-scores instead of 1/2; the study's spelling of
    it). Options not named take kernel_maxvol's defaults (space hybrid, bandwidth 0.3)."""
    if name in VARIANTS:
        return VARIANTS[name]
    opts: dict = {}
    xy = blend = False
    for tok in name.split("+"):
        if tok in ("hybrid", "normal", "rank", "standard", "robust"):
            opts["space"] = tok
        elif tok == "nn":
            opts["spacing"] = "nn"
        elif tok == "xy":
            xy = True
        elif tok.startswith("blend"):  # hybrid space with weight W on the z-scores (blend0.5 = "hybrid")
            opts["space"] = "standard"
            blend = float(tok[5:] or 0.5)
        elif tok.startswith("lin"):
            opts["linear"] = float(tok[3:] or 1)
        elif tok.startswith("bw"):
            opts["bandwidth"] = float(tok[2:])
        elif tok.startswith("clip"):
            opts["clip"] = float(tok[4:])
        elif tok.startswith("Lx"):
            opts["ratio"] = float(tok[2:])
        elif tok.startswith("r") and tok[1:].isdigit():
            opts["refine"] = int(tok[1:])
        elif tok.startswith("m") and tok[1:].isdigit():
            opts["match"] = int(tok[1:])
        else:
            raise SystemExit(f"unknown variant token {tok!r} in {name!r}")

    def fn(fld: Field, n: int, seed: int) -> np.ndarray:
        kw = dict(opts)
        ratio = kw.pop("ratio", None)
        if ratio is not None:
            kw["landmarks"] = max(1, int(round(ratio * n)))
        X = _with_xy(fld) if xy else fld.X
        if blend:
            from geotool.soil.features import normal_scores

            X = np.column_stack([np.sqrt(1 - blend) * normal_scores(X), np.sqrt(blend) * np.clip(X, -4, 4)])
        return _kernel(X, n, seed, **kw)
    return fn


def run_field(fld: Field, sizes: list[int], n_random: int, trees: int, eval_cells: int, methods: dict,
              cache: Path | None, seeds: int = 3, seed_offset: int = 0) -> dict:
    scorer = Scorer(fld, trees, eval_cells)
    print(f"\n## {fld.name}: {len(fld.X):,} candidate cells, covariates {', '.join(fld.names)}; targets "
          f"{', '.join(fld.targets)}; {n_random} random designs per N; metrics {', '.join(scorer.names)}")
    if "rf" in fld.models:
        rows = np.random.default_rng(7).choice(len(fld.X), 50, replace=False)
        across = np.std([scorer.score(rows, rf_seed=s)[1] for s in range(10)])
        rand = random_scores(scorer, 50, min(n_random, 100), cache)[:, 1]
        print(f"RF with {trees} trees scored on {len(scorer.eval_rows):,} cells: RMSE sd across 10 forest seeds for one "
              f"N=50 design {across:.3f} vs sd across random designs {rand.std():.3f} (x{across / rand.std():.2f})")
        # the instrument's ceiling: how far one good design's percentile moves with nothing but the forest seed
        rand = random_scores(scorer, 50, n_random, cache)
        good = m_kmeans(fld, 50, 0)
        pcts = [percentile(scorer.score(good, rf_seed=s), rand)[1:] for s in range(10)]
        for j, metric in enumerate(scorer.names[1:], start=1):
            if not metric.startswith("rf"):
                continue  # a ridge fit has no seed
            col = np.array([p[j - 1] for p in pcts])
            print(f"  {metric}: the k-means N=50 design's percentile over 10 forest seeds: {col.min():.0f}-{col.max():.0f} "
                  f"(median {np.median(col):.0f})")
    table: dict[str, dict[int, np.ndarray]] = {m: {} for m in methods}
    medians = {}
    t_all = time.perf_counter()
    for n in sizes:
        t0 = time.perf_counter()
        rand = random_scores(scorer, n, n_random, cache)
        medians[n] = np.median(rand, axis=0)
        for name, fn in methods.items():
            pct = [percentile(scorer.score(fn(fld, n, s)), rand) for s in range(seed_offset, seed_offset + seeds)]
            table[name][n] = np.array(pct)  # (seeds, metrics)
        print(f"  N={n}: {time.perf_counter() - t0:.0f} s (load average {os.getloadavg()[0]:.1f})", flush=True)
    print(f"{fld.name}: {time.perf_counter() - t_all:.0f} s in all")
    for j, metric in enumerate(scorer.names):
        print(f"\n{fld.name}, {metric}: percentile among random designs, mean over {seeds} seeds (min); random median "
              f"{', '.join(f'{medians[n][j]:.3g}' for n in sizes)}")
        print("| method | " + " | ".join(f"N={n}" for n in sizes) + " | mean |")
        print("|---|" + "---|" * (len(sizes) + 1))
        for name in methods:
            cells = [f"{table[name][n][:, j].mean():.0f} ({table[name][n][:, j].min():.0f})" for n in sizes]
            mean = np.mean([table[name][n][:, j].mean() for n in sizes])
            print(f"| {name} | " + " | ".join(cells) + f" | {mean:.1f} |")
    return {"names": scorer.names, "table": table}


def summary(results: list[dict], methods: dict, sizes: list[int]) -> None:
    """Over both fields, every N and every map-RMSE metric ((a) of the issue): mean and min percentile."""
    print("\n## Summary over both fields: map-prediction metrics (RMSE) and W/sd, mean percentile (worst case)")
    print("| method | RMSE mean | RMSE worst | RMSE cases >= 90% | W/sd mean | W/sd worst |")
    print("|---|---|---|---|---|---|")
    for name in methods:
        rmse, wsd = [], []
        for res in results:
            for j, metric in enumerate(res["names"]):
                vals = np.concatenate([res["table"][name][n][:, j] for n in sizes])
                (wsd if metric == "W/sd" else rmse).append(vals)
        rmse, wsd = np.concatenate(rmse), np.concatenate(wsd)
        print(f"| {name} | {rmse.mean():.1f} | {rmse.min():.0f} | {np.mean(rmse >= 90) * 100:.0f}% | {wsd.mean():.1f} | "
              f"{wsd.min():.0f} |")


def part2(folder: Path, repeats: int) -> None:
    """The real-point protocol through soil-evaluate: each method selects k of Xuancheng's measured points from
    the 7 covariates at the points; maxvol as soil-sample's default, with --match-marginals 2, and with the
    paper's linear features."""
    import pandas as pd

    from geotool.soil.evaluate import SoilEvaluateConfig, run_soil_evaluate

    runs = [("", dict(methods=["maxvol", "clhs", "kmeans", "random"])),
            (" --match-marginals 2", dict(methods=["maxvol"], match_marginals=2)),
            (" (paper: linear)", dict(methods=["maxvol"], features="linear"))]
    tables = []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for i, (label, opts) in enumerate(runs):
            cfg = SoilEvaluateConfig(
                measured=folder / "som_points.csv", output=Path(tmp) / f"eval{i}.csv", crs="EPSG:32650",
                properties=["som_a_horizon"], covariates=[folder / f"{n}.tif" for n in XUANCHENG],
                k=[10, 20, 30, 50], repeats=repeats, **opts,
            )
            table = run_soil_evaluate(cfg)
            table["method"] = [m + label if m == "maxvol" else m for m in table["method"]]
            tables.append(table)
    elapsed = time.perf_counter() - t0
    summary_table = pd.concat(tables, ignore_index=True)
    print(f"\n## Xuancheng measured points (183 real SOM samples), 7 covariates at the points, {repeats} repeats of "
          f"the random methods ({elapsed:.0f} s); Wasserstein / sd and KS of som_a_horizon, lower is better")
    print("| method | k | W/sd mean | W/sd sd | KS mean | log det |")
    print("|---|---|---|---|---|---|")
    for row in summary_table.itertuples(index=False):
        sd = "-" if row.w_sd_std != row.w_sd_std else f"{row.w_sd_std:.3f}"
        print(f"| {row.method} | {row.k} | {row.w_sd_mean:.3f} | {sd} | {row.ks_mean:.3f} | {row.log_det:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--soil", type=Path, default=ROOT / "data_samples" / "soil")
    parser.add_argument("--xuancheng", type=Path, default=ROOT.parent / "shared" / "data" / "soil_xuancheng")
    parser.add_argument("--random", type=int, default=200)
    parser.add_argument("--sizes", default="10,20,30,50,75,100")
    parser.add_argument("--trees", type=int, default=25)
    parser.add_argument("--eval-cells", type=int, default=20_000)
    parser.add_argument("--variants", default="", help="extra methods, comma-separated: " + ", ".join(VARIANTS) +
                        ", or kernel maxvol options joined by '+' (see parse_variant)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--seed-offset", type=int, default=0, help="first method seed (held-out seeds: 3)")
    parser.add_argument("--no-baselines", action="store_true", help="skip cLHS and k-means (exploring variants)")
    parser.add_argument("--fields", default="kshen,xuancheng", help="fields of part 1 ('none': part 2 alone)")
    parser.add_argument("--repeats", type=int, default=100, help="part 2 repeats (0 = skip part 2)")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "geotool_bench_cache")
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    sizes = [int(s) for s in args.sizes.split(",")]
    methods = dict(METHODS)
    if args.no_baselines:
        methods = {"maxvol (default)": METHODS["maxvol (default)"]}
    for name in filter(None, args.variants.split(",")):
        methods[name] = parse_variant(name)
    print(f"threads: OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, {os.cpu_count()} cpus, "
          f"load average at start {os.getloadavg()[0]:.1f}")
    results = []
    if "kshen" in args.fields:
        results.append(run_field(load_kshen(args.soil), sizes, args.random, args.trees, args.eval_cells, methods, args.cache,
                                 seeds=args.seeds, seed_offset=args.seed_offset))
    if "xuancheng" in args.fields:
        results.append(run_field(load_xuancheng(args.xuancheng), sizes, args.random, args.trees, args.eval_cells, methods,
                                 args.cache, seeds=args.seeds, seed_offset=args.seed_offset))
    if results:
        summary(results, methods, sizes)
    if args.repeats:
        part2(args.xuancheng, args.repeats)


if __name__ == "__main__":
    main()

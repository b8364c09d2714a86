"""What limits transfer: how much of each fold's generator MAE (east 30%) is a date-level NIR offset. Usage: python bench/nir_transfer_limit.py OUT/CONDITION"""
import json, sys, glob
from pathlib import Path
import numpy as np, rasterio
out = Path(sys.argv[1])
for gen in sorted(out.glob("*_nir.tif")):
    year = gen.stem[:4]
    ref = glob.glob(f"/work/shared/data/nir/*_{year}*.tif")[0]
    with rasterio.open(gen) as g, rasterio.open(ref) as r:
        fake = g.read(1).astype(float) / 255; d = r.read().astype(float)
    real, valid = d[3] / 255, (d > 0).all(0) & (g.read_masks(1) > 0) if False else (d > 0).all(0)
    split = int(round(d.shape[2] * 0.7)); valid[:, :split] = False
    e = (fake - real)[valid]
    corr = np.corrcoef(fake[valid], real[valid])[0, 1]
    # the best affine map of the generated NIR onto the real one (needs target NIR: an upper bound on what re-levelling gives)
    A = np.vstack([fake[valid], np.ones(valid.sum())]).T; coef, *_ = np.linalg.lstsq(A, real[valid], rcond=None)
    aff = np.abs(A @ coef - real[valid]).mean()
    print(f"{year}: MAE {np.abs(e).mean():.4f} bias {e.mean():+.4f} MAE after removing the median error {np.abs(e - np.median(e)).mean():.4f} "
          f"after the best affine fit {aff:.4f}; r {corr:.3f}; real NIR mean {real[valid].mean():.3f} sd {real[valid].std():.3f}")

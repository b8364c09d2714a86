"""How this crop was made (run from the repository root; needs ../shared/data/soil_xuancheng):

    python data_samples/soil_xuancheng/make_crop.py

A 150 x 150 window (30 km x 30 km at 200 m) of the 7 covariates and the two SOM maps of Xuancheng, and
the measured points that fall inside it. Georeference, nodata and values are the source's, unchanged.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from rasterio.windows import Window  # noqa: E402

from geotool.io.files import read_table, write_table  # noqa: E402
from geotool.io.raster import RasterSource, write_raster  # noqa: E402

SOURCE = ROOT.parent / "shared" / "data" / "soil_xuancheng"
LAYERS = ["dem", "slope", "twi", "plan_curvature", "profile_curvature", "temperature", "precipitation",
          "som_rf_map", "som_ked_map"]
WINDOW = Window(col_off=200, row_off=150, width=150, height=150)


def main() -> None:
    out = Path(__file__).resolve().parent
    for name in LAYERS:
        with RasterSource([SOURCE / f"{name}.tif"]) as src:
            data, valid = src.read(window=WINDOW, dtype=np.float32)
            grid = src.grid.window_grid(WINDOW)
            nodata = src.nodata[0]
        data[0][~valid] = nodata
        write_raster(out / f"{name}.tif", data, grid, nodata=nodata)
    points = read_table(SOURCE / "som_points.csv")
    left, bottom, right, top = grid.bounds
    inside = points["x"].between(left, right) & points["y"].between(bottom, top)
    write_table(out / "som_points.csv", points[inside].reset_index(drop=True))
    print(f"{int(inside.sum())} points inside {grid.bounds}")


if __name__ == "__main__":
    main()

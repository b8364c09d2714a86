"""Geo I/O: the only package in geotool that opens files.

- :mod:`geotool.io.files`: input checks, globs, hashes, YAML/JSON/CSV tables, atomic text output.
- :mod:`geotool.io.atomic`: write to a temp file in the target folder, rename on success.
- :mod:`geotool.io.raster`: grids, stacks of GeoTIFFs read window by window, atomic GeoTIFF writing.
- :mod:`geotool.io.vector`: reading/reprojecting vectors, writing by extension, rasterize, vectorize.
"""

"""Soil-sampling design: terrain covariates, candidate features, maxvol and baseline designs, evaluation.

Modules (each with one job):

- :mod:`geotool.soil.geometry`: ground metres for any CRS (EPSG:3857 pixels are not metres on the ground).
- :mod:`geotool.soil.terrain`: slope, aspect, curvature, priority-flood filling, D8 flow accumulation, TWI.
- :mod:`geotool.soil.features`: candidate matrix, constant/collinear checks, standardisation, expansions.
- :mod:`geotool.soil.maxvol`: square and greedy rectangular maxvol with fixed rows and a minimum distance.
- :mod:`geotool.soil.baselines`: random, conditioned Latin hypercube and k-means designs.
- :mod:`geotool.soil.design`: the ``soil-sample`` pipeline. :mod:`geotool.soil.evaluate`: ``soil-evaluate``.
- :mod:`geotool.soil.plot`: PNG previews.
"""

"""Soil-sampling design: terrain covariates, candidate features, maxvol and baseline designs, evaluation.

Modules (each with one job):

- :mod:`geotool.soil.terrain`: ground pixel size, slope, aspect, curvature, priority-flood filling, MFD/D8
  flow accumulation, TWI.
- :mod:`geotool.soil.features`: candidate cells, constant/collinear checks, standardisation, polynomial
  and kernel features.
- :mod:`geotool.soil.maxvol`: square and greedy rectangular maxvol with fixed rows and a minimum distance.
- :mod:`geotool.soil.baselines`: random, conditioned Latin hypercube and k-means designs.
- :mod:`geotool.soil.design`: the ``soil-sample`` pipeline. :mod:`geotool.soil.evaluate`: ``soil-evaluate``.
- :mod:`geotool.soil.plots`: PNG maps and charts.
"""

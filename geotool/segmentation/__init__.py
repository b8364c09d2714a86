"""Semantic segmentation (buildings, forest): training, tiled prediction, vectorization, evaluation.

Training data: :func:`geotool.segmentation.data.load_scenes` returns :class:`geotool.training.sampler.TrainScene`
records (raster paths, bands, a window reader, the scene's own labels in the raster CRS or the mask raster,
and the train/validation blocks); no pixel is held in memory. An object bank for object-based augmentation
must be built from the training blocks only (``scene.region_view("train")``); plug it in through
``run_train_segmentation(cfg, sample_transform=...)`` (a :class:`geotool.training.sampler.SampleTransform`),
which applies it to TRAINING windows only (raw units, before albumentations), never to validation.
"""

"""Semantic segmentation (buildings, forest): training, tiled prediction, vectorization, evaluation.

Training data: :func:`geotool.segmentation.data.load_scenes` returns :class:`geotool.training.sampler.TrainScene`
records (raster paths, bands, labels in the raster CRS or the mask raster path, pixel arrays and the
train/validation block regions). An object bank for object-based augmentation must be built from
``scene.train_region`` only; plug it in through ``run_train_segmentation(cfg, sample_transform=...)``,
which applies it to TRAINING windows only (raw units, before albumentations), never to validation.
"""

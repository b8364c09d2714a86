"""Task-neutral training infrastructure shared by segmentation and NIR generation.

- :mod:`geotool.training.split`: spatial block split of a scene into train / validation blocks (on the block
  grid, from the scene's size only), and the window positions that lie wholly inside one region
  (:class:`~geotool.training.split.BlockPositions`, indexable without listing them; no window ever straddles
  the split).
- :mod:`geotool.training.fit`: :func:`fit_and_export`, the one training path of both commands (trainer,
  loaders, fit, best-or-last restore, ``model.ckpt``, curves, sidecar) given a :class:`TrainingTask`.
- :mod:`geotool.training.sampler`: :class:`TrainScene` (one scene read window by window through
  :mod:`geotool.io.windows`, with its block split), :class:`ArrayScene` (one held in memory), the
  :class:`SampleTransform` protocol (e.g. object-based augmentation),
  :class:`RandomWindowDataset`, the reproducible random-window sampler of both commands (segmentation's
  positions rule with an optional positive-balanced mode, NIR's valid-share rule), and the validation
  picker :func:`grid_windows`; scenes smaller than a window are padded (invalid), not skipped.
- :mod:`geotool.training.normalization`: per-band mean / standard deviation from training pixels only (whole
  arrays, or a seeded sample of training windows).
- :mod:`geotool.training.trainer`: a Lightning ``Trainer`` factory from common options (accelerator,
  devices, precision, strategy, step/epoch budget, early stopping, best + last checkpoints, CSV log).
- :mod:`geotool.training.curves`: the training-curve PNG from Lightning's ``metrics.csv``.
"""

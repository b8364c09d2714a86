"""Task-neutral training infrastructure shared by segmentation and NIR generation.

- :mod:`geotool.training.split`: spatial block split of a scene into train / validation regions, and the
  window positions that lie wholly inside one region (no window ever straddles the split).
- :mod:`geotool.training.sampler`: :class:`TrainScene` (one scene held in memory, with its region masks)
  and :class:`RandomWindowDataset`, a reproducible random-window sampler over several scenes with an
  optional positive-balanced mode; scenes smaller than a window are padded (invalid), not skipped.
- :mod:`geotool.training.normalization`: per-band mean / standard deviation from training pixels only.
- :mod:`geotool.training.trainer`: a Lightning ``Trainer`` factory from common options (accelerator,
  devices, precision, strategy, step/epoch budget, early stopping, best + last checkpoints, CSV log).
- :mod:`geotool.training.curves`: the training-curve PNG from Lightning's ``metrics.csv``.
"""

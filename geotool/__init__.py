"""geotool: applied remote sensing and soil work from the command line.

Commands: ``soil-sample`` / ``soil-evaluate`` (maxvol sampling design), ``train-segmentation`` /
``predict`` / ``evaluate`` (forest and building segmentation), ``train-nir`` / ``generate-nir`` /
``evaluate-nir`` (RGB to NIR conditional GAN) and ``oba-augment`` (object-based augmentation).
"""

__version__ = "0.1.0"

"""Object-based augmentation (OBA, arXiv:2105.05516): cut labelled objects out of scenes and paste
them onto label-free backgrounds, offline (``geotool oba-augment``) or on the fly in training."""

"""RGB -> NIR generation with a pix2pix-style conditional GAN: scaling, data, model, metrics, baselines."""

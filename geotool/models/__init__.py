"""Shared neural networks (pix2pix U-Net generator, PatchGAN discriminator)."""

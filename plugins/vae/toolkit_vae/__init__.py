"""toolkit-vae: registers ``vae``, ``convvae`` and ``iwae``; the implementation (toolkit_vae.vae)
loads on use."""

from toolkit import hookimpl


@hookimpl
def register_algorithms(register):
    register("vae", "toolkit_vae.vae:VAE", "VAE (Kingma & Welling 2014), MLP; --flow planar|radial, beta, KL annealing, free bits")
    register("convvae", "toolkit_vae.vae:ConvVAE", "Convolutional VAE")
    register("iwae", "toolkit_vae.vae:IWAE", "Importance-weighted autoencoder (Burda et al. 2016), k = 5")

"""toolkit-gan: registers the GAN-family trainers; each module loads on use."""

from toolkit import hookimpl


@hookimpl
def register_algorithms(register):
    register("gan", "toolkit_gan.gan:GAN", "GAN (Goodfellow et al. 2014), MLP, with the improved-training options")
    register("dcgan", "toolkit_gan.gan:DCGAN", "DCGAN (Radford et al. 2016): convolutional GAN with batch norm")
    register("wgan", "toolkit_gan.wgan:WGAN", "WGAN (Arjovsky et al. 2017); --preset gp for WGAN-GP (Gulrajani et al.)")
    register("began", "toolkit_gan.began:BEGAN", "BEGAN (Berthelot et al. 2017): autoencoder discriminator, k_t control")
    register("infogan", "toolkit_gan.infogan:InfoGAN", "InfoGAN (Chen et al. 2016): categorical and continuous codes")
    register("gmmn", "toolkit_gan.gmmn:GMMN", "GMMN (Li et al. 2015): moment matching with a mixture of RBF kernels")

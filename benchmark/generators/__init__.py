"""DiffAug's generator family: text- and mask-conditioned latent diffusion inpainting.

Building blocks so far (issue #4, in progress): the prompt bank (``prompts``), the frozen text
encoder (``text_encoder``) and the latent autoencoder (``autoencoder``). The ``GENERATORS``
registry and the DVC stages that train and sample the generator come with the denoiser.
"""

"""DiffAug's latent-space segmentation network (paper §3.2) and SDSeg as its single-encoder variant.

- :mod:`.network`: :class:`LatentSegmentationNetwork` (frozen z_a + V_ψ, fusion ψ, UNet denoiser).
- :mod:`.diffusion`: noise schedule, eqs. 10–12, single-step and DDIM inference.
- :mod:`.trainer`: resumable training with eq. 12.
- :mod:`.inference`: batched encode → denoise → decode.
- :mod:`.method`: the registered ``diffaug`` / ``sdseg`` methods and :func:`predict_latent_masks`
  (the quality gate's predictor).

Submodules import torch and diffusers; this package file imports nothing heavy.
"""

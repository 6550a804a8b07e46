"""Batched mask prediction with a latent segmentation network: encode, denoise from noise, decode."""

from __future__ import annotations

import numpy as np
import torch

from benchmark.methods.latent_seg.diffusion import noise_from_output, sample_clean_latents
from benchmark.methods.latent_seg.network import LatentSegmentationNetwork
from benchmark.methods.supervised import images_to_tensor, module_device


@torch.no_grad()
def predict_masks(
    network: LatentSegmentationNetwork,
    autoencoder,
    images: np.ndarray,
    *,
    alphas_cumprod: torch.Tensor,
    steps: int = 1,
    seed: int = 0,
    batch_size: int = 100,
    prediction_type: str = "epsilon",
) -> np.ndarray:
    """Foreground probabilities D(ẑ_0) of ``images``.

    The initial noise z_{T−1} of all N images is drawn at once from ``torch.Generator().manual_seed(seed)``,
    so the result is deterministic and independent of ``batch_size``. Per batch: z_a = E(I) by
    the frozen autoencoder (dual mode) and/or the pixels, f_fused once, ``steps`` denoiser calls
    (1 = eq. 11's single-step estimate), then the frozen decoder.

    Args:
        network: a trained :class:`LatentSegmentationNetwork`.
        autoencoder: its frozen ``LatentAutoencoder``.
        images: uint8 (N, S, S, 3), S divisible by the autoencoder's factor f.
        alphas_cumprod: ᾱ of the training schedule, (T,).
        steps: DDIM steps (1 = single-step).
        seed: seed of the inference noise.
        batch_size: images per network call.
        prediction_type: what the network outputs, "epsilon" or "v_prediction".

    Returns:
        float32 (N, S, S) in [0, 1].
    """
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images must be uint8 (N, H, W, 3), got {images.dtype} {images.shape}")
    factor = autoencoder.downsampling_factor
    if images.shape[1] % factor or images.shape[2] % factor:
        raise ValueError(f"image side {images.shape[1:3]} is not divisible by the autoencoder's factor {factor}")
    network.eval()
    device = module_device(network)
    shape = (len(images), network.latent_channels, images.shape[1] // factor, images.shape[2] // factor)
    noise = torch.randn(shape, generator=torch.Generator().manual_seed(seed))
    alphas = alphas_cumprod.to(device)
    outputs = [np.zeros((0, *images.shape[1:3]), np.float32)]
    for start in range(0, len(images), batch_size):
        chunk = images[start : start + batch_size]
        latents = torch.from_numpy(autoencoder.encode_images(chunk)).to(device) if network.uses_image_latents else None
        pixels = images_to_tensor(chunk).to(device) if network.uses_pixels else None
        condition = network.encode_condition(latents, pixels)
        denoise = lambda z, t: noise_from_output(network(z, t, condition), z, alphas[t], prediction_type)  # noqa: E731
        clean = sample_clean_latents(denoise, noise[start : start + batch_size].to(device), alphas, steps)
        outputs.append(autoencoder.decode_masks(clean))
    return np.concatenate(outputs).astype(np.float32, copy=False)

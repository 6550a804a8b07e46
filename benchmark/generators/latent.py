"""The default generator backend: a small latent diffusion inpainting model trained from scratch.

Composes the pieces of this family: the frozen latent autoencoder (:mod:`.autoencoder`, trained
in the ``autoencoder`` stage), the frozen pretrained text encoder (:mod:`.text_encoder`), the
9-channel inpainting ``UNet2DConditionModel`` trained with eq. 7 (:mod:`.inpainting`) and the
DDIM + classifier-free-guidance sampler (:mod:`.sampler`). At the CPU default (64² images,
4×16×16 latents) it trains in minutes; the paper-scale counterpart is
:class:`benchmark.generators.sdxl.SDXLInpaintingGenerator`.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from benchmark.config import from_mapping, to_mapping
from benchmark.generators.autoencoder import LatentAutoencoder
from benchmark.generators.base import InpaintingExamples, InpaintingGenerator, paste_back
from benchmark.generators.configs import LatentGeneratorConfig
from benchmark.generators.inpainting import downsample_masks, load_denoiser, save_denoiser, train_inpainting
from benchmark.generators.sampler import ddim_inpaint
from benchmark.methods.supervised import images_to_tensor
from benchmark.utils.io import atomic_dir, read_json, write_json

METADATA_FILE = "generator.json"


class LatentInpaintingGenerator(InpaintingGenerator):
    """Latent diffusion inpainting (paper §3.1) at CPU scale.

    Args:
        config: see :class:`LatentGeneratorConfig`.
        autoencoder: the frozen :class:`LatentAutoencoder` whose latents the denoiser works in
            (:meth:`save` stores a copy, so a saved generator is self-contained).
    """

    name = "latent"
    display_name = "latent diffusion inpainting (trained from scratch)"
    Config = LatentGeneratorConfig

    def __init__(self, config: LatentGeneratorConfig | None = None, *, autoencoder: LatentAutoencoder):
        super().__init__(config)
        self.autoencoder = autoencoder
        self.denoiser = None
        self._text_encoder = None
        #: seconds spent in each part by the last :meth:`generate` call (text, encode, denoise, decode, paste).
        self.last_timings: dict[str, float] = {}

    @property
    def text_encoder(self):
        if self._text_encoder is None:
            from benchmark.generators.text_encoder import TextEncoder

            self._text_encoder = TextEncoder.from_local(
                self.config.text_encoder, self.config.text_encoder_path, max_length=self.config.max_length
            )
        return self._text_encoder

    def _latent_inputs(
        self, normal_images: np.ndarray, masks: np.ndarray
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(known latents, mask at latent size, masked-image latents), float32 (N, 4|1|4, h, w).

        The masked image is the normal image with the mask region set to 0 in [-1, 1] pixel space
        (mid grey), Stable Diffusion inpainting's ``masked_image`` convention.
        """
        pixels = images_to_tensor(normal_images)
        masked = pixels * (1 - torch.from_numpy(masks).float().unsqueeze(1))
        known = torch.from_numpy(self.autoencoder.encode_images(normal_images))
        masked_latents = torch.from_numpy(self.autoencoder._encode(masked))
        return known, downsample_masks(masks, known.shape[-1]), masked_latents

    def fit(
        self, examples: InpaintingExamples, *, seed: int, checkpoint_dir: str | Path, progress: bool = True
    ) -> pd.DataFrame:
        """Encode everything once, then train the denoiser (resumable, see ``train_inpainting``)."""
        latents = torch.from_numpy(self.autoencoder.encode_images(examples.images))
        normal_latents, mask_latents, masked_latents = self._latent_inputs(examples.normal_images, examples.masks)
        text, _ = self.text_encoder.encode(list(examples.prompts))
        uncond, _ = self.text_encoder.encode([examples.negative_prompt])
        self.denoiser, log = train_inpainting(
            latents,
            normal_latents,
            mask_latents,
            masked_latents,
            text.cpu(),
            uncond.cpu(),
            self.config.denoiser,
            seed=seed,
            checkpoint_dir=checkpoint_dir,
            progress=progress,
        )
        return log

    def generate(
        self,
        backgrounds: np.ndarray,
        masks: np.ndarray,
        prompts: list[str],
        *,
        negative_prompt: str,
        steps: int,
        guidance_scale: float,
        seeds: list[int],
        progress: bool = False,
    ) -> np.ndarray:
        """See :meth:`InpaintingGenerator.generate`; per-part seconds land in ``last_timings``."""
        from tqdm.auto import tqdm

        if self.denoiser is None:
            raise RuntimeError("the generator is not trained: call fit() or load() first")
        self.check_generate_inputs(backgrounds, masks, prompts, seeds)
        masks = masks.astype(np.uint8)
        timings = dict.fromkeys(("text_s", "encode_s", "denoise_s", "decode_s", "paste_s"), 0.0)
        outputs = []
        size = self.config.batch_size
        for start in tqdm(range(0, len(backgrounds), size), desc="generate", disable=not progress, unit="batch"):
            part = slice(start, start + size)
            clock = time.perf_counter()
            text, _ = self.text_encoder.encode(list(prompts[part]))
            uncond, _ = self.text_encoder.encode([negative_prompt])
            timings["text_s"] += (now := time.perf_counter()) - clock
            known, mask_latents, masked_latents = self._latent_inputs(backgrounds[part], masks[part])
            timings["encode_s"] += (clock := time.perf_counter()) - now
            generators = [torch.Generator().manual_seed(int(s)) for s in seeds[part]]
            latents = ddim_inpaint(
                self.denoiser,
                self.config.denoiser,
                masked_image_latents=masked_latents,
                mask_latents=mask_latents,
                known_latents=known,
                text_embeddings=text.cpu(),
                uncond_embeddings=uncond.cpu(),
                steps=steps,
                guidance_scale=guidance_scale,
                generator=generators,
            )
            timings["denoise_s"] += (now := time.perf_counter()) - clock
            decoded = self.autoencoder.decode_images(latents)
            timings["decode_s"] += (clock := time.perf_counter()) - now
            outputs.append(paste_back(decoded, backgrounds[part], masks[part], feather_px=self.config.feather_px))
            timings["paste_s"] += time.perf_counter() - clock
        self.last_timings = timings
        return np.concatenate(outputs)

    def save(self, directory: str | Path) -> None:
        """Write ``denoiser/``, ``autoencoder/`` and ``generator.json`` atomically."""
        if self.denoiser is None:
            raise RuntimeError("nothing to save: the generator is not trained")
        with atomic_dir(directory) as tmp:
            save_denoiser(self.denoiser, self.config.denoiser, tmp / "denoiser")
            self.autoencoder.save(tmp / "autoencoder")
            write_json(tmp / METADATA_FILE, {"backend": self.name, "config": to_mapping(self.config)})

    @classmethod
    def load(cls, directory: str | Path) -> LatentInpaintingGenerator:
        directory = Path(directory)
        if not (directory / METADATA_FILE).is_file():
            raise FileNotFoundError(
                f"{directory / METADATA_FILE} is missing: {directory} is not a saved generator; rerun `dvc repro generator`"
            )
        metadata = read_json(directory / METADATA_FILE)
        if metadata.get("backend") != cls.name:
            raise ValueError(f"{directory} holds a '{metadata.get('backend')}' generator, not '{cls.name}'")
        config = from_mapping(
            cls.Config, metadata["config"], where="generator.latent", source=str(directory / METADATA_FILE)
        )
        generator = cls(config, autoencoder=LatentAutoencoder.load(directory / "autoencoder"))
        generator.denoiser, _ = load_denoiser(directory / "denoiser")
        return generator

"""The paper-scale generator backend: SDXL-inpainting from a local folder, fine-tuned with LoRA (paper §3.1, §4.3).

The paper fine-tunes the SDXL-inpainting checkpoint at 256² pixels: the VAE (f = 8) turns an image
into a 32×32×4 latent, the 9-channel inpainting UNet denoises it conditioned on the mask, the
masked image's latent and two CLIP text encoders, and sampling runs 50 DDIM steps with
classifier-free guidance 7.5 (eq. 8) and a negative prompt ("healthy mucosa", "normal optic disc")
as the unconditional branch. Here the UNet's base weights stay frozen and only LoRA adapters on its
attention projections are trained, with the SAME objective as the small backend
(:func:`~benchmark.generators.inpainting.generation_loss`, eq. 7 through the clean-latent estimate).

The weights are never downloaded: ``pretrained_path`` must be a folder written by
``StableDiffusionXLInpaintPipeline.save_pretrained`` (e.g. of
``diffusers/stable-diffusion-xl-1.0-inpainting-0.1``, about 14 GB in float32, 10 of them the
UNet), and every load passes ``local_files_only=True``. Fine-tuning the real checkpoint needs a
GPU; on CPU this module is only exercised with a tiny randomly initialised pipeline built by the
tests. SDXL ships an Euler scheduler; by default sampling swaps in DDIM (the paper's sampler) with
the checkpoint's noise schedule, which is also the ᾱ_t of training.

Masks are aligned to the latent grid before use: a latent cell is inpainted when any pixel it
covers is lesion (:func:`latent_aligned_masks`, max pooling as in
:func:`~benchmark.generators.inpainting.downsample_masks`). Training (masked image, mask channel)
and sampling (the pipeline's ``mask_image``, which it downsamples by nearest neighbour) thus see
the same mask; :func:`~benchmark.generators.base.paste_back` restores the exact background outside
the original pixel mask at the end.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from benchmark.config import from_mapping, to_mapping
from benchmark.generators.base import InpaintingExamples, InpaintingGenerator, paste_back
from benchmark.generators.configs import SDXLInpaintingConfig
from benchmark.generators.inpainting import downsample_masks, generation_loss
from benchmark.utils.io import atomic_dir, atomic_path, read_json, write_json
from benchmark.utils.schedules import warmup_cosine
from benchmark.utils.seeding import derive_seed

# diffusers / transformers are imported lazily, after these: huggingface_hub reads them once, at import
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

METADATA_FILE = "sdxl_inpainting.json"
LORA_FILE = "pytorch_lora_weights.safetensors"  # diffusers' ``save_lora_weights`` default name
COMPONENTS = ("unet", "vae", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2", "scheduler")
HOW_TO_GET = (
    "on a machine with internet run `StableDiffusionXLInpaintPipeline.from_pretrained("
    "'diffusers/stable-diffusion-xl-1.0-inpainting-0.1').save_pretrained(FOLDER)` and copy FOLDER here"
)
ADAPTER = "default"
ENCODE_BATCH = 16  # images / prompts per frozen-encoder forward pass during precomputation


def check_pretrained_folder(path: str | Path | None) -> Path:
    """Return ``path`` as a Path if it holds a saved SDXL-inpainting pipeline, else raise FileNotFoundError."""
    if path is None:
        raise FileNotFoundError(
            f"SDXLInpaintingConfig.pretrained_path is not set: set generator.sdxl_inpainting.pretrained_path "
            f"to a local SDXL-inpainting folder; to get one, {HOW_TO_GET}"
        )
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(f"SDXL-inpainting folder {folder} does not exist; to get it, {HOW_TO_GET}")
    missing = [name for name in ("model_index.json", *COMPONENTS) if not (folder / name).exists()]
    if missing:
        raise FileNotFoundError(
            f"SDXL-inpainting folder {folder} lacks {', '.join(missing)} (a complete folder has "
            f"model_index.json and {', '.join(c + '/' for c in COMPONENTS)}); to get it, {HOW_TO_GET}"
        )
    return folder


def load_pipeline(path: str | Path | None, sampler: str = "ddim"):
    """Load ``StableDiffusionXLInpaintPipeline`` from a local folder only (float32, CPU, no watermark).

    With ``sampler="ddim"`` the scheduler is replaced by a ``DDIMScheduler`` with the same noise
    schedule (``clip_sample=False``, ``set_alpha_to_one=False``: Stable Diffusion's inference settings).
    Either sampler uses "trailing" timestep spacing (:data:`benchmark.generators.sampler.TIMESTEP_SPACING`),
    so sampling starts at the last training timestep whatever the step count.

    Raises:
        FileNotFoundError: the folder or one of its components is missing.
        ValueError: the UNet is not a 9-channel inpainting UNet, or does not predict ε.
    """
    from diffusers import DDIMScheduler, StableDiffusionXLInpaintPipeline

    from benchmark.generators.sampler import TIMESTEP_SPACING

    folder = check_pretrained_folder(path)
    channels = read_json(folder / "unet" / "config.json").get("in_channels")  # checked before loading gigabytes
    if channels != 9:
        raise ValueError(
            f"{folder / 'unet'} has {channels} input channels, but inpainting needs 9 (latent, mask, masked-image "
            f"latent): use an inpainting checkpoint such as diffusers/stable-diffusion-xl-1.0-inpainting-0.1"
        )
    pipeline = StableDiffusionXLInpaintPipeline.from_pretrained(folder, local_files_only=True, add_watermarker=False)
    if pipeline.scheduler.config.get("prediction_type", "epsilon") != "epsilon":
        raise ValueError(
            f"{folder / 'scheduler'} has prediction_type {pipeline.scheduler.config.prediction_type!r}; "
            f"eq. 7's objective needs an ε-prediction checkpoint"
        )
    if sampler == "ddim":
        pipeline.scheduler = DDIMScheduler.from_config(
            pipeline.scheduler.config, clip_sample=False, set_alpha_to_one=False, timestep_spacing=TIMESTEP_SPACING
        )
    else:  # the checkpoint's own scheduler (Euler for SDXL), with the same first step at T − 1
        pipeline.scheduler = type(pipeline.scheduler).from_config(
            pipeline.scheduler.config, timestep_spacing=TIMESTEP_SPACING
        )
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


def latent_aligned_masks(masks: np.ndarray, factor: int) -> tuple[np.ndarray, torch.Tensor]:
    """Widen pixel masks to whole latent cells.

    Args:
        masks: (N, S, S) in {0, 1}, S divisible by ``factor``.
        factor: the VAE's downsampling factor f (8 for SDXL).

    Returns:
        ``(pixel, latent)``: uint8 (N, S, S) in {0, 1}, constant on each f×f cell and 1 where the
        cell touches the mask; and float32 (N, 1, S/f, S/f) in {0, 1}, its latent-resolution copy.
    """
    latent = downsample_masks(masks, masks.shape[-1] // factor)
    pixel = latent.repeat_interleave(factor, dim=2).repeat_interleave(factor, dim=3)[:, 0]
    return pixel.numpy().astype(np.uint8), latent


def resize_images(images: np.ndarray, size: int) -> np.ndarray:
    """uint8 (N, S, S, 3) -> uint8 (N, size, size, 3) (bicubic; a no-op when S == size)."""
    from PIL import Image

    if images.shape[1] == size:
        return images
    return np.stack([np.asarray(Image.fromarray(image).resize((size, size), Image.BICUBIC)) for image in images])


def resize_masks(masks: np.ndarray, size: int) -> np.ndarray:
    """(N, S, S) in {0, 1} -> uint8 (N, size, size) in {0, 1} (nearest; a no-op copy when S == size)."""
    from PIL import Image

    masks = masks.astype(np.uint8)
    if masks.shape[1] == size:
        return masks
    return np.stack([np.asarray(Image.fromarray(mask).resize((size, size), Image.NEAREST)) for mask in masks])


def blank_masked(images: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """float32 (N, S, S, 3) in [0, 255]: ``images`` with the mask region at 127.5, i.e. exactly 0 in
    [-1, 1] pixel space, the pipeline's ``masked_image = image * (mask < 0.5)`` convention."""
    return np.where(masks[..., None] > 0, np.float32(127.5), images.astype(np.float32))


@torch.no_grad()
def encode_latents(vae, images: np.ndarray) -> torch.Tensor:
    """uint8 or float32 (N, S, S, 3) in [0, 255] -> float32 (N, 4, S/f, S/f) CPU latents.

    The latent is the posterior mean (deterministic) × ``vae.config.scaling_factor``, as the
    pipeline scales them; pixels are mapped to [-1, 1] first.
    """
    device, latents = vae.device, []
    for start in range(0, len(images), ENCODE_BATCH):
        chunk = np.asarray(images[start : start + ENCODE_BATCH], dtype=np.float32)
        pixels = torch.from_numpy(chunk).permute(0, 3, 1, 2) / 127.5 - 1.0
        latents.append(vae.encode(pixels.to(device, vae.dtype)).latent_dist.mean.float().cpu())
    return torch.cat(latents) * vae.config.scaling_factor


@torch.no_grad()
def encode_prompts(pipeline, prompts: list[str], negative_prompt: str) -> tuple[torch.Tensor, ...]:
    """SDXL text conditioning of ``prompts`` and of ``negative_prompt``, as the pipeline computes it.

    Returns:
        ``(embeds, pooled, negative_embeds, negative_pooled)``, float32 on CPU: token states of both
        text encoders concatenated (N, L, D1 + D2), pooled projections (N, P), and the negative
        prompt's (1, L, D1 + D2) and (1, P).
    """
    embeds, pooled = [], []
    for start in range(0, len(prompts), ENCODE_BATCH):
        chunk = list(prompts[start : start + ENCODE_BATCH])
        chunk_embeds, negative, chunk_pooled, negative_pooled = pipeline.encode_prompt(
            prompt=chunk,
            device=pipeline.device,
            do_classifier_free_guidance=True,
            negative_prompt=[negative_prompt] * len(chunk),
        )
        embeds.append(chunk_embeds.float().cpu())
        pooled.append(chunk_pooled.float().cpu())
    return torch.cat(embeds), torch.cat(pooled), negative[:1].float().cpu(), negative_pooled[:1].float().cpu()


class SDXLInpaintingGenerator(InpaintingGenerator):
    """SDXL-inpainting with LoRA adapters on the UNet, trained with eq. 7 (see the module docstring).

    The pipeline is loaded lazily from ``config.pretrained_path`` on first use, so building the
    object is cheap. Without :meth:`fit` (or :meth:`load` of a fitted generator) it samples from
    the pretrained checkpoint as is.
    """

    name = "sdxl_inpainting"
    display_name = "SDXL-inpainting + LoRA (local weights)"
    Config = SDXLInpaintingConfig

    def __init__(self, config: SDXLInpaintingConfig | None = None):
        super().__init__(config)
        self._pipeline = None

    @property
    def pipeline(self):
        """The ``StableDiffusionXLInpaintPipeline`` (loaded on first access; CUDA when available)."""
        if self._pipeline is None:
            self._pipeline = _to_device(
                load_pipeline(self.config.pretrained_path, self.config.sampler),
                torch.device("cuda" if torch.cuda.is_available() else "cpu"),
            )
        return self._pipeline

    @property
    def has_adapter(self) -> bool:
        """Whether the UNet carries LoRA adapters (after :meth:`fit` or :meth:`load` of a fitted generator)."""
        return self._pipeline is not None and ADAPTER in (getattr(self._pipeline.unet, "peft_config", None) or {})

    def _add_adapter(self, seed: int) -> None:
        """Fresh LoRA adapters on the UNet (B = 0, so the model starts equal to the checkpoint)."""
        from peft import LoraConfig

        unet = self.pipeline.unet
        if self.has_adapter:
            unet.delete_adapters(ADAPTER)
        lora = LoraConfig(
            r=self.config.lora_rank,
            lora_alpha=self.config.lora_alpha,
            init_lora_weights="gaussian",
            target_modules=list(self.config.lora_target_modules),
        )
        with torch.random.fork_rng(devices=[]):  # seeded initialisation without touching the global RNG
            torch.manual_seed(derive_seed(seed, self.name, "lora_init"))
            unet.add_adapter(lora, adapter_name=ADAPTER)

    def fit(
        self, examples: InpaintingExamples, *, seed: int, checkpoint_dir: str | Path, progress: bool = True
    ) -> pd.DataFrame:
        """Fine-tune fresh LoRA adapters of the UNet on ``examples`` (eq. 7), resumably.

        The VAE latents of the images, of the normal images and of the masked normal images (mask
        region set to 0 in [-1, 1] pixels, the pipeline's ``masked_image`` convention), the masks at
        latent size and the prompts' SDXL embeddings are computed once; a step then costs one UNet
        forward + backward. Each step draws samples, timesteps t ~ U{0..T-1}, noise and the
        text-dropout share from one ``torch.Generator`` seeded by ``seed``; ᾱ_t is the checkpoint
        scheduler's. AdamW on the LoRA parameters only, warm-up + cosine, gradient clipping, through
        ``accelerate.Accelerator(mixed_precision=...)``. A checkpoint (LoRA weights, optimiser,
        scheduler, generator, step, log, config, seed) is written atomically to
        ``checkpoint_dir/checkpoint.pt`` every ``checkpoint_every`` steps and at the end; rerunning
        resumes from it and ends bit-identical to an uninterrupted run on CPU.

        Args:
            examples: images, normal images, masks at one resolution S (resized to
                ``config.resolution`` when S differs), prompts and the negative prompt.
            seed: seeds LoRA initialisation, batches, timesteps, noise and text dropout.
            checkpoint_dir: holds ``checkpoint.pt`` and ``train_log.csv``.
            progress: show a tqdm bar.

        Returns:
            The per-step log: step, loss, noise, preserve, learning_rate (also ``train_log.csv``).

        Raises:
            ValueError: a checkpoint in ``checkpoint_dir`` was written for another config or seed.
            FloatingPointError: the loss became NaN or infinite.
        """
        from accelerate import Accelerator
        from peft import get_peft_model_state_dict, set_peft_model_state_dict

        config, checkpoint_dir = self.config, Path(checkpoint_dir)
        checkpoint_path = checkpoint_dir / "checkpoint.pt"
        try:
            accelerator = Accelerator(mixed_precision=config.mixed_precision)
        except ValueError as error:  # accelerate's state is a process-wide singleton
            raise ValueError(
                f"mixed_precision={config.mixed_precision!r} conflicts with an earlier Accelerator in this "
                f"process ({error}); run fits with different mixed_precision in separate processes"
            ) from error
        pipeline = _to_device(self.pipeline, accelerator.device)
        unet = pipeline.unet
        for module in (pipeline.vae, pipeline.text_encoder, pipeline.text_encoder_2, unet):
            module.requires_grad_(False).eval()

        size, factor = config.resolution, pipeline.vae_scale_factor
        images, normals = resize_images(examples.images, size), resize_images(examples.normal_images, size)
        pixel_masks, mask_latents = latent_aligned_masks(resize_masks(examples.masks, size), factor)
        latents, normal_latents = encode_latents(pipeline.vae, images), encode_latents(pipeline.vae, normals)
        masked_latents = encode_latents(pipeline.vae, blank_masked(normals, pixel_masks))
        unique = sorted(set(examples.prompts))
        embeds, pooled, uncond, uncond_pooled = encode_prompts(pipeline, unique, examples.negative_prompt)
        position = {prompt: i for i, prompt in enumerate(unique)}
        which = torch.tensor([position[prompt] for prompt in examples.prompts])
        time_ids, uncond_time_ids = _time_ids(pipeline, size)
        alphas = pipeline.scheduler.alphas_cumprod.float().cpu()

        self._add_adapter(seed)
        if config.gradient_checkpointing:
            unet.enable_gradient_checkpointing()
        parameters = [p for p in unet.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(parameters, lr=config.learning_rate, weight_decay=config.weight_decay)
        scheduler = warmup_cosine(optimizer, config.warmup_steps, config.steps)
        model, optimizer, scheduler = accelerator.prepare(unet, optimizer, scheduler)
        rank = accelerator.process_index
        generator = torch.Generator().manual_seed(seed if rank == 0 else derive_seed(seed, self.name, "rank", rank))
        history, start = [], 0
        if checkpoint_path.is_file():
            state = torch.load(checkpoint_path, map_location="cpu", weights_only=False)
            if state["config"] != to_mapping(config) or state["seed"] != seed:
                raise ValueError(f"{checkpoint_path} was written for another config or seed; delete it to start over")
            set_peft_model_state_dict(accelerator.unwrap_model(model), state["lora"], adapter_name=ADAPTER)
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            history, start = state["history"], state["step"]
            if accelerator.scaler is not None and state.get("scaler") is not None:  # fp16 loss scaling
                accelerator.scaler.load_state_dict(state["scaler"])
            if rank == 0:
                generator.set_state(state["generator"])
            else:
                generator.manual_seed(derive_seed(seed, self.name, "rank", rank, start))

        device, n = accelerator.device, len(examples)
        bar = tqdm(range(start, config.steps), desc=self.name, disable=not progress, initial=start, total=config.steps)
        for step in bar:
            model.train()
            index = torch.randint(n, (config.batch_size,), generator=generator)
            z0, zn, mask, masked = (t[index] for t in (latents, normal_latents, mask_latents, masked_latents))
            text, text_pooled = embeds[which[index]], pooled[which[index]]
            timesteps = torch.randint(len(alphas), (config.batch_size,), generator=generator)
            noise = torch.randn(z0.shape, generator=generator)
            drop = torch.rand(config.batch_size, generator=generator) < config.text_dropout
            text = torch.where(drop.view(-1, 1, 1), uncond, text)
            text_pooled = torch.where(drop.view(-1, 1), uncond_pooled, text_pooled)
            step_time_ids = torch.where(drop.view(-1, 1), uncond_time_ids, time_ids)
            alpha = alphas[timesteps]
            a = alpha.view(-1, 1, 1, 1)
            noisy = a.sqrt() * z0 + (1 - a).sqrt() * noise
            inputs = torch.cat([noisy, mask, masked], dim=1).to(device)
            added = {"text_embeds": text_pooled.to(device), "time_ids": step_time_ids.to(device)}
            noise_pred = model(
                inputs, timesteps.to(device), encoder_hidden_states=text.to(device), added_cond_kwargs=added
            ).sample
            loss, terms = generation_loss(
                noise.to(device),
                noise_pred,
                noisy.to(device),
                alpha.to(device),
                mask.to(device),
                zn.to(device),
                config.lambda_preserve,
                return_terms=True,
                snr_gamma=config.preserve_snr_gamma,
            )
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"{self.name} loss became {loss.item()} at step {step}; lower learning_rate "
                    f"({config.learning_rate}) or lambda_preserve ({config.lambda_preserve})"
                )
            optimizer.zero_grad(set_to_none=True)
            accelerator.backward(loss)
            if config.max_grad_norm > 0:
                accelerator.clip_grad_norm_(parameters, config.max_grad_norm)
            optimizer.step()
            scheduler.step()
            history.append({"step": step, "loss": loss.item(), **terms, "learning_rate": scheduler.get_last_lr()[0]})
            bar.set_postfix(loss=f"{loss.item():.4f}")
            if (step + 1) % config.checkpoint_every == 0 or step + 1 == config.steps:
                if accelerator.is_main_process:
                    lora = get_peft_model_state_dict(accelerator.unwrap_model(model), adapter_name=ADAPTER)
                    lora = {key: value.detach().cpu().clone() for key, value in lora.items()}
                    state = {
                        "step": step + 1,
                        "lora": lora,
                        "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict(),
                        "generator": generator.get_state(),
                        "history": history,
                        "scaler": accelerator.scaler.state_dict() if accelerator.scaler is not None else None,
                        "config": to_mapping(config),
                        "seed": seed,
                    }
                    with atomic_path(checkpoint_path, suffix=".pt") as tmp:
                        torch.save(state, tmp)
                accelerator.wait_for_everyone()

        unet = accelerator.unwrap_model(model).eval()
        # undo accelerate's marks by hand: unwrap_model(keep_fp32_wrapper=False) unwraps past diffusers' own
        # @apply_lora_scale decorator of forward, and a leftover _is_accelerate_prepared makes a later fit's
        # prepare() skip the model (no autocast)
        if unet.__dict__.pop("_original_forward", None) is not None:
            unet.__dict__.pop("forward", None)
        unet.__dict__.pop("_is_accelerate_prepared", None)
        if config.gradient_checkpointing:
            unet.disable_gradient_checkpointing()
        pipeline.unet = unet
        log = pd.DataFrame(history, columns=["step", "loss", "noise", "preserve", "learning_rate"])
        if accelerator.is_main_process:
            with atomic_path(checkpoint_dir / "train_log.csv", suffix=".csv") as tmp:
                log.to_csv(tmp, index=False)
        return log

    @torch.no_grad()
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
        """Inpaint with ``StableDiffusionXLInpaintPipeline.__call__`` (strength 1, one generator per sample).

        The pipeline gets the latent-aligned masks (:func:`latent_aligned_masks`) and the
        masked-image latents computed as in training, so sampling sees the conditioning it was
        trained on.

        Args:
            backgrounds: uint8 (B, S, S, 3); resized to ``config.resolution`` for sampling when S differs.
            masks: (B, S, S) in {0, 1}; widened to whole latent cells for sampling.
            prompts: B lesion descriptions; negative_prompt: the unconditional branch of eq. 8.
            steps: sampler steps (paper: 50 DDIM steps).
            guidance_scale: s of eq. 8 (paper 7.5); as in diffusers, s <= 1 samples the
                conditional prediction only.
            seeds: B ints; sample i draws its initial noise (and any sampler noise) from
                ``torch.Generator().manual_seed(seeds[i])`` alone.
            progress: show a progress bar over chunks of ``config.batch_size`` samples (one
                pipeline call each).

        Returns:
            uint8 (B, S, S, 3), equal to ``backgrounds`` farther than 1.5 px from the mask (:func:`paste_back`).
        """
        from PIL import Image

        self.check_generate_inputs(backgrounds, masks, prompts, seeds)
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ValueError(f"steps must be an int >= 1 (paper: 50), got {steps!r}")
        pipeline, size, chunk = self.pipeline, self.config.resolution, self.config.batch_size
        resized = resize_images(backgrounds, size)
        pixel_masks, _ = latent_aligned_masks(resize_masks(masks, size), pipeline.vae_scale_factor)
        outputs = []
        for start in tqdm(range(0, len(backgrounds), chunk), desc="generate", disable=not progress, unit="batch"):
            part = slice(start, start + chunk)
            # the masked-image latents exactly as in training (posterior mean; the pipeline would draw a sample)
            masked_latents = encode_latents(pipeline.vae, blank_masked(resized[part], pixel_masks[part])).to(
                pipeline.device
            )
            generators = [torch.Generator().manual_seed(int(seed)) for seed in seeds[part]]
            images = pipeline(
                prompt=list(prompts[part]),
                negative_prompt=[negative_prompt] * len(prompts[part]),
                image=[Image.fromarray(image) for image in resized[part]],
                masked_image_latents=masked_latents,
                mask_image=[Image.fromarray(mask * np.uint8(255)) for mask in pixel_masks[part]],
                num_inference_steps=steps,
                guidance_scale=guidance_scale,
                strength=1.0,
                height=size,
                width=size,
                generator=generators,
                output_type="np",
            ).images
            outputs.append(np.round(np.asarray(images) * 255).clip(0, 255).astype(np.uint8))
        generated = resize_images(np.concatenate(outputs), backgrounds.shape[1])
        return paste_back(generated, backgrounds, masks.astype(np.uint8))

    def save(self, directory: str | Path) -> None:
        """Atomically write ``sdxl_inpainting.json`` (config, absolute pretrained_path) and, once
        fitted, the UNet's LoRA adapter in diffusers' format (``pytorch_lora_weights.safetensors``,
        loadable with ``pipeline.load_lora_weights``). The base checkpoint is not copied."""
        from diffusers.utils import convert_state_dict_to_diffusers
        from peft import get_peft_model_state_dict

        pretrained = str(check_pretrained_folder(self.config.pretrained_path).resolve())
        with atomic_dir(directory) as tmp:
            if self.has_adapter:
                unet = self.pipeline.unet
                layers = convert_state_dict_to_diffusers(get_peft_model_state_dict(unet, adapter_name=ADAPTER))
                type(self.pipeline).save_lora_weights(
                    tmp,
                    unet_lora_layers=layers,
                    weight_name=LORA_FILE,
                    unet_lora_adapter_metadata=unet.peft_config[ADAPTER].to_dict(),
                )
            write_json(
                tmp / METADATA_FILE,
                {
                    "backend": self.name,
                    "config": to_mapping(self.config),
                    "pretrained_path": pretrained,
                    "adapter": LORA_FILE if self.has_adapter else None,
                },
            )

    @classmethod
    def load(cls, directory: str | Path, *, pretrained_path: str | Path | None = None) -> SDXLInpaintingGenerator:
        """Inverse of :meth:`save`: the recorded checkpoint (or ``pretrained_path``, if the base
        folder moved) plus the saved adapter; samples equal the saved generator's."""
        directory, source = Path(directory), Path(directory) / METADATA_FILE
        if not source.is_file():
            raise FileNotFoundError(
                f"{source} is missing: {directory} is not a saved {cls.name} generator; rerun `dvc repro generator`"
            )
        metadata = read_json(source)
        if metadata.get("backend") != cls.name:
            raise ValueError(f"{directory} holds a '{metadata.get('backend')}' generator, not '{cls.name}'")
        config = from_mapping(
            SDXLInpaintingConfig, metadata["config"], where=f"generator.{cls.name}", source=str(source)
        )
        config = dataclasses.replace(config, pretrained_path=str(pretrained_path or metadata["pretrained_path"]))
        generator = cls(config)
        if metadata.get("adapter"):
            # the UNet's own loader: the adapter's LoraConfig (rank, alpha, targets) comes from the file's metadata
            generator.pipeline.unet.load_lora_adapter(
                directory, weight_name=metadata["adapter"], prefix="unet", adapter_name=ADAPTER, local_files_only=True
            )
        return generator


def _time_ids(pipeline, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """SDXL's micro-conditioning (original size, crop corner, target size) as the pipeline builds it
    for ``size``×``size`` sampling: float32 (1, 6) for the prompt and for the negative prompt."""
    square, corner = (size, size), (0, 0)
    # a private helper, but the one __call__ uses: it also checks the UNet's time-embedding width and
    # handles checkpoints that condition on an aesthetic score (6.0 / 2.5 are __call__'s defaults)
    return pipeline._get_add_time_ids(
        square,
        corner,
        square,
        6.0,
        2.5,
        square,
        corner,
        square,
        dtype=torch.float32,
        text_encoder_projection_dim=int(pipeline.text_encoder_2.config.projection_dim),
    )


def _to_device(pipeline, device: torch.device):
    """Move the pipeline only when needed (``.to`` logs a float32-casting notice for the VAE on every call)."""
    if pipeline.device != torch.device(device):
        pipeline.to(device)
    return pipeline

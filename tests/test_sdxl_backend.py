"""The SDXL-inpainting + LoRA backend on a tiny SDXL pipeline built here from scratch (no downloads)."""

from __future__ import annotations

import dataclasses
import json
import shutil
import string
from pathlib import Path

import numpy as np
import pytest
import torch
from resume_evidence import counting_optimizer_steps, resume_evidence
from scipy import ndimage

from benchmark.generators import sdxl
from benchmark.generators.base import InpaintingExamples
from benchmark.generators.sdxl import SDXLInpaintingConfig, SDXLInpaintingGenerator

torch.set_num_threads(1)

SIZE, N = 32, 4
PROMPTS = ("sessile polyp", "red polyp with smooth surface", "sessile polyp", "large polyp")
NEGATIVE = "healthy mucosa"


def _tokenizer(folder, max_length):
    """A character-level CLIP BPE tokenizer (letters, their word-final forms, the special tokens)."""
    from transformers import CLIPTokenizer

    tokens = [
        "<|startoftext|>",
        "<|endoftext|>",
        *string.ascii_lowercase,
        *(c + "</w>" for c in string.ascii_lowercase),
    ]
    folder.mkdir()
    (folder / "vocab.json").write_text(json.dumps({token: i for i, token in enumerate(tokens)}))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    return CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=max_length), len(
        tokens
    )


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """A tiny SDXL-inpainting pipeline (VAE f = 2, 2-level UNet, two 16-wide CLIPs) saved with save_pretrained."""
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionXLInpaintPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    root = tmp_path_factory.mktemp("sdxl")
    tokenizer, vocab = _tokenizer(root / "tok1", 32)
    tokenizer_2, _ = _tokenizer(root / "tok2", 32)
    text = dict(
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        vocab_size=vocab,
        max_position_embeddings=32,
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=1,
    )
    torch.manual_seed(0)
    pipeline = StableDiffusionXLInpaintPipeline(
        vae=AutoencoderKL(
            block_out_channels=(8, 16),
            down_block_types=("DownEncoderBlock2D",) * 2,
            up_block_types=("UpDecoderBlock2D",) * 2,
            latent_channels=4,
            sample_size=SIZE,
            norm_num_groups=8,
        ),
        text_encoder=CLIPTextModel(CLIPTextConfig(**text)),
        text_encoder_2=CLIPTextModelWithProjection(CLIPTextConfig(**text, projection_dim=8)),
        tokenizer=tokenizer,
        tokenizer_2=tokenizer_2,
        unet=UNet2DConditionModel(
            sample_size=SIZE // 2,
            in_channels=9,
            out_channels=4,
            block_out_channels=(32, 64),
            layers_per_block=1,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
            attention_head_dim=(2, 4),
            cross_attention_dim=32,
            addition_embed_type="text_time",
            addition_time_embed_dim=4,
            projection_class_embeddings_input_dim=8 + 6 * 4,
            use_linear_projection=True,
        ),
        scheduler=EulerDiscreteScheduler(
            beta_start=0.00085,
            beta_end=0.012,
            beta_schedule="scaled_linear",
            steps_offset=1,
            timestep_spacing="leading",
        ),
        add_watermarker=False,
    )
    pipeline.save_pretrained(root / "pipeline")
    return root / "pipeline"


@pytest.fixture(scope="module")
def examples():
    rng = np.random.default_rng(0)
    normal = rng.normal(100, 25, (N, SIZE, SIZE, 3)).clip(0, 255).astype(np.uint8)
    yy, xx = np.mgrid[:SIZE, :SIZE]
    masks = np.stack([((yy - 10 - 3 * i) ** 2 + (xx - 14 - 2 * i) ** 2 < 30).astype(np.uint8) for i in range(N)])
    images = np.where(masks[..., None] > 0, np.uint8(220), normal)
    return InpaintingExamples(images, normal, masks, PROMPTS, NEGATIVE)


@pytest.fixture(scope="module")
def config(pretrained):
    return SDXLInpaintingConfig(
        pretrained_path=str(pretrained),
        resolution=SIZE,
        lora_rank=4,
        lora_alpha=8,
        steps=2,
        batch_size=2,
        learning_rate=1e-3,
        warmup_steps=1,
        checkpoint_every=1,
        text_dropout=0.5,
    )


@pytest.fixture(scope="module")
def fitted(config, examples, tmp_path_factory):
    generator = SDXLInpaintingGenerator(config)
    base = {name: value.clone() for name, value in generator.pipeline.unet.state_dict().items()}
    checkpoint_dir = tmp_path_factory.mktemp("fit")
    log = generator.fit(examples, seed=3, checkpoint_dir=checkpoint_dir, progress=False)
    return generator, log, base, checkpoint_dir


def _lora(generator):
    from peft import get_peft_model_state_dict

    return get_peft_model_state_dict(generator.pipeline.unet, adapter_name="default")


def _generate(generator, examples, index=(0, 1, 2), seeds=(5, 6, 7), size=SIZE):
    index = list(index)
    backgrounds, masks = examples.normal_images[index], examples.masks[index]
    if size != SIZE:
        backgrounds, masks = sdxl.resize_images(backgrounds, size), sdxl.resize_masks(masks, size)
    return generator.generate(
        backgrounds,
        masks,
        [PROMPTS[i] for i in index],
        negative_prompt=NEGATIVE,
        steps=2,
        guidance_scale=3.0,
        seeds=list(seeds),
    )


def test_config_validation_names_the_field():
    for field, value in [
        ("resolution", 36),
        ("text_dropout", 1.0),
        ("mixed_precision", "fp8"),
        ("sampler", "euler"),
        ("lora_rank", 0),
        ("lora_target_modules", ()),
    ]:
        with pytest.raises(ValueError, match=field if field != "resolution" else "multiple of 8"):
            SDXLInpaintingConfig(**{field: value})


def test_loads_local_folder_and_names_missing_parts(pretrained, config, tmp_path):
    pipeline = SDXLInpaintingGenerator(config).pipeline
    assert pipeline.unet.config.in_channels == 9 and type(pipeline.scheduler).__name__ == "DDIMScheduler"
    assert not pipeline.scheduler.config.clip_sample
    for steps in (5, 10, 50):  # sampling starts at the last training timestep, whatever the step count
        pipeline.scheduler.set_timesteps(steps)
        assert int(pipeline.scheduler.timesteps[0]) == pipeline.scheduler.config.num_train_timesteps - 1
    euler = SDXLInpaintingGenerator(dataclasses.replace(config, sampler="pipeline")).pipeline.scheduler
    euler.set_timesteps(5)
    assert (
        type(euler).__name__ != "DDIMScheduler"
        and round(float(euler.timesteps[0])) == euler.config.num_train_timesteps - 1
    )
    broken = tmp_path / "no_unet"
    shutil.copytree(pretrained, broken, ignore=shutil.ignore_patterns("unet"))
    with pytest.raises(FileNotFoundError, match=r"no_unet lacks unet.*save_pretrained"):
        _ = SDXLInpaintingGenerator(dataclasses.replace(config, pretrained_path=str(broken))).pipeline
    not_inpainting = tmp_path / "text_to_image"
    shutil.copytree(pretrained, not_inpainting)
    unet_config = json.loads((not_inpainting / "unet" / "config.json").read_text())
    (not_inpainting / "unet" / "config.json").write_text(json.dumps({**unet_config, "in_channels": 4}))
    with pytest.raises(ValueError, match="4 input channels.*needs 9"):
        _ = SDXLInpaintingGenerator(dataclasses.replace(config, pretrained_path=str(not_inpainting))).pipeline
    with pytest.raises(FileNotFoundError, match="does not exist"):
        _ = SDXLInpaintingGenerator(dataclasses.replace(config, pretrained_path=str(tmp_path / "absent"))).pipeline
    with pytest.raises(FileNotFoundError, match="pretrained_path is not set"):
        _ = SDXLInpaintingGenerator().pipeline


def test_fit_trains_only_lora(fitted):
    generator, log, base, checkpoint_dir = fitted
    assert log["step"].tolist() == [0, 1] and np.isfinite(log[["loss", "noise", "preserve"]].to_numpy()).all()
    assert (checkpoint_dir / "train_log.csv").is_file() and (checkpoint_dir / "checkpoint.pt").is_file()
    after = generator.pipeline.unet.state_dict()
    lora = {name: value for name, value in after.items() if "lora_" in name}
    assert lora and any(value.abs().sum() > 0 for name, value in lora.items() if "lora_B" in name)
    for name, value in after.items():
        if "lora_" not in name:
            assert torch.equal(value, base[name.replace(".base_layer", "")]), name
    assert not any(p.requires_grad for p in generator.pipeline.vae.parameters())


def test_resume_is_bit_identical(fitted, config, examples, tmp_path, monkeypatch):
    generator, log, _, _ = fitted
    original, calls = sdxl.generation_loss, {"n": 0}

    def failing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:  # after the checkpoint of step 1
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(sdxl, "generation_loss", failing)
    with pytest.raises(KeyboardInterrupt):
        SDXLInpaintingGenerator(config).fit(examples, seed=3, checkpoint_dir=tmp_path, progress=False)
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=False)["step"] == 1
    monkeypatch.setattr(sdxl, "generation_loss", original)
    resumed = SDXLInpaintingGenerator(config)
    with counting_optimizer_steps() as steps:  # the weights alone cannot tell a resume from a restart
        resumed_log = resumed.fit(examples, seed=3, checkpoint_dir=tmp_path, progress=False)
    assert resume_evidence(steps.count, total_steps=config.steps, checkpoint_steps=1) == "resumed"
    reference = _lora(generator)
    for name, value in _lora(resumed).items():
        assert torch.equal(value, reference[name]), name
    assert resumed_log["loss"].tolist() == log["loss"].tolist()
    with pytest.raises(ValueError, match="another config or seed"):
        resumed.fit(examples, seed=4, checkpoint_dir=tmp_path, progress=False)


def test_generate_contract(fitted, examples):
    generator = fitted[0]
    batch = _generate(generator, examples)
    assert batch.shape == (3, SIZE, SIZE, 3) and batch.dtype == np.uint8
    backgrounds, masks = examples.normal_images[:3], examples.masks[:3]
    for sample, background, mask in zip(batch, backgrounds, masks):
        far = ndimage.distance_transform_edt(mask == 0) > 1.5
        assert np.array_equal(sample[far], background[far]) and not np.array_equal(
            sample[mask > 0], background[mask > 0]
        )
    assert np.array_equal(batch, _generate(generator, examples))
    assert not np.array_equal(batch[1], _generate(generator, examples, seeds=(5, 9, 7))[1])
    alone = _generate(generator, examples, index=[1], seeds=[6])
    assert np.array_equal(alone[0], batch[1])  # independent of the batch composition
    assert _generate(generator, examples, index=[0], seeds=[5], size=48).shape == (1, 48, 48, 3)


def test_pretrained_checkpoint_samples_without_fit(config, examples, tmp_path):
    generator = SDXLInpaintingGenerator(
        dataclasses.replace(config, sampler="pipeline")
    )  # the checkpoint's Euler scheduler
    sample = _generate(generator, examples, index=[0], seeds=[1])
    assert sample.shape == (1, SIZE, SIZE, 3) and np.array_equal(
        sample, _generate(generator, examples, index=[0], seeds=[1])
    )
    generator.save(tmp_path / "zero_shot")
    assert not (tmp_path / "zero_shot" / sdxl.LORA_FILE).exists()
    assert np.array_equal(
        _generate(SDXLInpaintingGenerator.load(tmp_path / "zero_shot"), examples, index=[0], seeds=[1]), sample
    )


def test_save_load_round_trip(fitted, config, examples, tmp_path):
    generator = fitted[0]
    generator.save(tmp_path / "model")
    assert (tmp_path / "model" / sdxl.LORA_FILE).is_file()
    loaded = SDXLInpaintingGenerator.load(tmp_path / "model")
    assert loaded.config == dataclasses.replace(config, pretrained_path=str(Path(config.pretrained_path).resolve()))
    samples = _generate(generator, examples)
    assert np.array_equal(_generate(loaded, examples), samples)
    # the adapter matters (rank 4, alpha 8: a loader ignoring alpha would not reproduce the samples)
    assert not np.array_equal(_generate(SDXLInpaintingGenerator(config), examples), samples)


def test_latent_aligned_masks_cover_the_mask_and_match_nearest_downsampling():
    masks = np.zeros((2, 16, 16), np.uint8)
    masks[0, 3:6, 9] = 1
    pixel, latent = sdxl.latent_aligned_masks(masks, 4)
    assert latent.shape == (2, 1, 4, 4) and latent.dtype == torch.float32
    assert (pixel >= masks).all() and pixel[0].sum() == 2 * 16 and pixel[1].sum() == 0
    # the pipeline downsamples mask_image by nearest neighbour: on aligned masks that equals the training mask
    nearest = torch.nn.functional.interpolate(torch.from_numpy(pixel).float()[:, None], size=(4, 4))
    assert torch.equal(nearest, latent)

"""Tests of the frozen text encoder: offline MiniLM, a tiny local CLIP, caching, errors."""

from __future__ import annotations

import json
import os
import socket
import string

import numpy as np
import pytest
import torch
from transformers import CLIPTextConfig, CLIPTextModel

from benchmark.generators.prompts import prompt_for
from benchmark.generators.text_encoder import TextEncoder

PROMPTS = ["sessile polyp 5-10 mm with a smooth surface", "early glaucomatous cupping, cup-to-disc ratio 0.5"]


@pytest.fixture
def no_network(monkeypatch):
    """Any connection attempt fails the test: loading must use local files only."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture(scope="module")
def minilm() -> TextEncoder:
    return TextEncoder.from_local("minilm")


@pytest.fixture
def clip_folder(tmp_path):
    """A tiny CLIP text model and a hand-written BPE tokenizer (characters plus a few merges)."""
    chars = string.ascii_lowercase + string.digits + ".,-()"
    tokens = [
        "<|startoftext|>",
        "<|endoftext|>",
        *chars,
        *(c + "</w>" for c in chars),
        "po",
        "pol",
        "poly",
        "polyp</w>",
    ]
    (tmp_path / "vocab.json").write_text(json.dumps({token: i for i, token in enumerate(tokens)}))
    (tmp_path / "merges.txt").write_text("#version: 0.2\np o\npo l\npol y\npoly p</w>\n")
    config = CLIPTextConfig(
        hidden_size=32,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        vocab_size=len(tokens),
        max_position_embeddings=77,
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=1,
    )
    torch.manual_seed(0)
    CLIPTextModel(config).save_pretrained(tmp_path)
    return tmp_path


def test_offline_defaults_are_set():
    assert os.environ.get("HF_HUB_OFFLINE") == "1"


def test_minilm_loads_offline_and_encodes(no_network):
    encoder = TextEncoder.from_local("minilm", max_length=32)
    states, mask = encoder.encode(PROMPTS)
    assert encoder.dim == 384
    assert states.shape == (2, 32, 384) and states.dtype == torch.float32
    assert mask.shape == (2, 32) and mask.dtype == torch.int64
    assert set(mask.unique().tolist()) == {0, 1} and torch.all(mask[:, 0] == 1)
    assert torch.isfinite(states).all() and states.abs().max() < 20


def test_minilm_default_length_distinct_and_cached(minilm):
    states, mask = minilm.encode(PROMPTS)
    assert states.shape == (2, 77, 384) and mask.shape == (2, 77)
    assert not torch.allclose(states[0], states[1])
    hits = minilm.cache_hits
    again, again_mask = minilm.encode([PROMPTS[1], PROMPTS[0], PROMPTS[1]])
    assert minilm.cache_hits == hits + 3
    assert torch.equal(again[0], states[1]) and torch.equal(again[1], states[0]) and torch.equal(again[2], states[1])
    assert torch.equal(again_mask[1], mask[0])
    uncached = TextEncoder(minilm.tokenizer, minilm.model, cache_size=0)
    fresh, _ = uncached.encode([PROMPTS[0]])
    assert uncached.cache_misses == 1 and torch.allclose(fresh[0], states[0], atol=1e-5)


def test_cache_is_bounded(minilm):
    small = TextEncoder(minilm.tokenizer, minilm.model, cache_size=2)
    small.encode(["a", "b", "c"])
    small.encode(["c"])
    assert small.cache_hits == 1 and small.cache_misses == 3 and len(small._cache) == 2


def test_encoder_is_frozen(minilm):
    assert not any(p.requires_grad for p in minilm.parameters())
    minilm.train()
    assert not minilm.training and not minilm.model.training
    states, _ = minilm.encode(["flat polyp"])
    assert not states.requires_grad


def test_diverse_prompts_fit_sixty_tokens(minilm):
    rng = np.random.default_rng(0)
    longest = {
        "diameter_mm": 13.9,
        "paris_type": "pedunculated",
        "surface": "irregular",
        "vascular_pattern": "irregular",
    }
    prompts = [prompt_for("polyp", longest, variant="diverse", rng=rng) for _ in range(30)]
    prompts += [
        prompt_for("fundus", {"vcdr": 0.7, "rim_thinning": "inferior"}, variant="diverse", rng=rng) for _ in range(30)
    ]
    batch = minilm.tokenizer(prompts, padding=True)
    assert max(sum(row) for row in batch["attention_mask"]) <= 60


def test_tiny_clip_loads_from_folder(clip_folder, no_network):
    encoder = TextEncoder.from_local("clip", clip_folder)
    states, mask = encoder.encode(["a polyp 5-10 mm", "cup-to-disc ratio 0.7"])
    assert encoder.dim == 32
    assert states.shape == (2, 77, 32) and states.dtype == torch.float32 and mask.shape == (2, 77)
    assert mask[0].sum() < mask[1].sum() and not torch.allclose(states[0], states[1])
    assert not any(p.requires_grad for p in encoder.parameters())
    short, _ = TextEncoder.from_local("clip", str(clip_folder), max_length=16).encode(["polyp"])
    assert short.shape == (1, 16, 32)


def test_errors_are_clear(tmp_path, clip_folder):
    with pytest.raises(ValueError, match="needs path"):
        TextEncoder.from_local("clip")
    with pytest.raises(ValueError, match="'t5'"):
        TextEncoder.from_local("t5", tmp_path)
    missing = tmp_path / "no-such-clip"
    with pytest.raises(FileNotFoundError, match=f"{missing}.*does not exist.*vocab.json"):
        TextEncoder.from_local("clip", missing)
    (clip_folder / "merges.txt").unlink()
    with pytest.raises(FileNotFoundError, match="lacks merges.txt"):
        TextEncoder.from_local("clip", clip_folder)
    missing.mkdir()
    with pytest.raises(
        FileNotFoundError, match="lacks config.json, model.safetensors or pytorch_model.bin, tokenizer.json"
    ):
        TextEncoder.from_local("minilm", missing)


def test_bad_arguments(minilm, clip_folder):
    with pytest.raises(ValueError, match=r"max_length must be an int in \[1, 77\]"):
        TextEncoder.from_local("clip", clip_folder, max_length=78)
    with pytest.raises(TypeError, match="list of strings"):
        minilm.encode("a single string")
    with pytest.raises(TypeError, match="list of strings"):
        minilm.encode([])

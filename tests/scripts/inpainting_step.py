"""One (or more) steps of the inpainting trainer on a fixed tiny problem; run alone or under
``accelerate launch``. Writes rank 0's trained weights and last gradients, and a per-rank weight digest, to OUT.

    python tests/scripts/inpainting_step.py OUT [STEPS]
"""

import hashlib
import sys
from pathlib import Path

import torch

from benchmark.generators.configs import InpaintingConfig
from benchmark.generators.inpainting import train_inpainting


def problem(n: int = 8, size: int = 8, length: int = 5, dim: int = 16):
    generator = torch.Generator().manual_seed(0)
    lesion = torch.randn(n, 4, size, size, generator=generator)
    normal = torch.randn(n, 4, size, size, generator=generator)
    mask = (torch.rand(n, 1, size, size, generator=generator) < 0.3).float()
    return dict(
        latents=lesion,
        normal_latents=normal,
        mask_latents=mask,
        masked_image_latents=normal * (1 - mask),
        text_embeddings=torch.randn(n, length, dim, generator=generator),
        uncond_embedding=torch.zeros(1, length, dim),
    )


def main() -> None:
    from accelerate import PartialState

    out, steps = Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 1
    torch.set_num_threads(1)
    config = InpaintingConfig(
        block_out_channels=(16, 16),
        attention_head_dim=8,
        steps=steps,
        batch_size=4,
        warmup_steps=0,
        checkpoint_every=100,
        learning_rate=1e-3,
    )
    denoiser, log = train_inpainting(**problem(), config=config, seed=5, checkpoint_dir=out / "ckpt", progress=False)
    state = PartialState()
    weights = torch.cat([p.detach().flatten() for p in denoiser.parameters()])
    # the last step's (all-reduced, clipped) gradients are still on the parameters
    gradients = torch.cat(
        [p.grad.flatten() if p.grad is not None else torch.zeros(p.numel()) for p in denoiser.parameters()]
    )
    (out / f"digest_rank{state.process_index}.txt").write_text(hashlib.sha256(weights.numpy().tobytes()).hexdigest())
    if state.is_main_process:
        torch.save(
            {"weights": weights, "gradients": gradients, "world": state.num_processes, "loss": log["loss"].tolist()},
            out / "weights.pt",
        )


if __name__ == "__main__":
    main()

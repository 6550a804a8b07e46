"""Learning-rate schedules shared by the trainers."""

from __future__ import annotations

import math

import torch


def warmup_cosine(
    optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up over ``warmup_steps``, then cosine decay to 0 at ``total_steps``.

    The factor at step s is ``min(1, (s + 1) / warmup) * 0.5 * (1 + cos(pi * p))`` with
    ``p = clip((s - warmup) / (total - warmup), 0, 1)``; call ``scheduler.step()`` once per
    optimiser step.
    """
    warmup, decay = max(1, warmup_steps), max(1, total_steps - warmup_steps)

    def factor(step: int) -> float:
        progress = min(1.0, max(0, step - warmup_steps) / decay)
        return min(1.0, (step + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)

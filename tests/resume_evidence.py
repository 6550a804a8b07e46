"""Evidence that a resumed training run read its checkpoint: the optimiser steps the run took.

Every trainer here is deterministic under its seed, so a run that ignores its checkpoint and
retrains from scratch ends bit-identical to one that resumed: comparing final weights or the
returned log (the checkpoint carries the log of the epochs before it) cannot tell them apart.
The number of optimiser steps the second call takes can: after a checkpoint saved at step k of
n, a resumed run takes n - k steps, a restart takes n.

Usage::

    with counting_optimizer_steps() as steps:
        trainer(...)
    assert resume_evidence(steps.count, total_steps=n, checkpoint_steps=k) == "resumed"
"""

from __future__ import annotations

from benchmark.stages.train import counting_optimizer_steps  # noqa: F401 (re-exported for the resume tests)


def resume_evidence(steps_taken: int, *, total_steps: int, checkpoint_steps: int) -> str:
    """What the optimiser steps of a second training call say about where it started.

    Args:
        steps_taken: optimiser steps the second call took.
        total_steps: steps of a whole run from scratch.
        checkpoint_steps: steps done when the checkpoint left by the first call was saved (0 < k < n).

    Returns:
        "resumed" (exactly n - k steps), "from scratch" (n steps) or "unexplained: ..." otherwise.
    """
    if not 0 < checkpoint_steps < total_steps:
        raise ValueError(
            f"checkpoint_steps={checkpoint_steps} must lie strictly between 0 and total_steps={total_steps}"
        )
    if steps_taken == total_steps - checkpoint_steps:
        return "resumed"
    if steps_taken == total_steps:
        return "from scratch"
    return f"unexplained: {steps_taken} steps, expected {total_steps - checkpoint_steps} (resumed) or {total_steps} (from scratch)"
